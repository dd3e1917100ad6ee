"""The light-weight data calibrator (Ye et al., "Light-weight Calibrator: a Separable Component
for Unsupervised Domain Adaptation", CVPR 2020, sections 3 and 5.3).

- :class:`Calibrator`: ``G_c = I + G'_c``. ``G'_c`` is a small ResNet-style generator (Johnson et
  al.): a stem convolution, stride-2 downsampling, residual blocks, transposed-convolution
  upsampling with additive skip connections from the matching downsampling level, and a tanh
  head scaled so the perturbation's L-infinity norm never exceeds ``linf`` (in units of the [0, 1]
  pixel range; images here are in [-1, 1], so the bound there is ``2 * linf``). The head starts at
  zero, so training starts from ``G_c = I`` (the source model's own accuracy), and the calibrated
  image is clipped to the image range: an image stays an image (the authors' release clips too).
  ``output="one_sided"`` is the authors' release's mapping instead: ``clamp((tanh + 1) / 2, 0, 2 * linf)``,
  a perturbation in [0, 2 * linf] that only brightens, with every convolution drawn from N(0, 0.02) as the
  release's ``init_weights``; it starts near the bound (tanh ~ 0 maps to 0.5, clipped), not at the identity.
- :class:`CalibratedModel`: the deployed pipeline, the calibrator then the frozen model.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pipeline_lib.artifacts import load_checkpoint
from pipeline_lib.config import BackboneParams
from pipeline_lib.models import load_task_model
from pipeline_lib.models.cyclegan import ResidualBlock


OUTPUTS = ("symmetric", "one_sided")


class Calibrator(nn.Module):
    def __init__(self, channels: int, ngf: int = 16, n_down: int = 2, n_blocks: int = 2, linf: float = 0.1,
                 output: str = "symmetric") -> None:
        super().__init__()
        if not 0 < linf <= 1:
            raise ValueError(f"calibrator linf must be in (0, 1], got {linf}")
        if output not in OUTPUTS:
            raise ValueError(f"calibrator output must be one of {OUTPUTS}, got {output!r}")
        self.linf, self.multiple, self.output = float(linf), 2 ** n_down, output
        self.stem = nn.Sequential(nn.Conv2d(channels, ngf, 3, padding=1), nn.InstanceNorm2d(ngf), nn.ReLU(True))
        self.down = nn.ModuleList()
        ch = ngf
        for _ in range(n_down):
            self.down.append(nn.Sequential(nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1),
                                           nn.InstanceNorm2d(ch * 2), nn.ReLU(True)))
            ch *= 2
        self.blocks = nn.Sequential(*[ResidualBlock(ch, "instance") for _ in range(n_blocks)])
        self.up = nn.ModuleList()
        for _ in range(n_down):
            self.up.append(nn.Sequential(nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                                         nn.InstanceNorm2d(ch // 2), nn.ReLU(True)))
            ch //= 2
        self.head = nn.Conv2d(ch, channels, 3, padding=1)
        if output == "symmetric":
            nn.init.zeros_(self.head.weight), nn.init.zeros_(self.head.bias)  # G'_c = 0 at the start: G_c = I
        else:  # the release's init_weights("normal"): every convolution N(0, 0.02), biases 0
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                    nn.init.normal_(m.weight, 0.0, 0.02), nn.init.zeros_(m.bias)

    def perturbation(self, x: torch.Tensor) -> torch.Tensor:
        """G'_c(x), with |G'_c(x)| <= 2 * linf everywhere (the [-1, 1] image range); in [0, 2 * linf] when
        ``output`` is ``one_sided``."""
        h, w = x.shape[-2:]
        pad_h, pad_w = (-h) % self.multiple, (-w) % self.multiple
        y = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x
        y = self.stem(y)
        skips = []
        for layer in self.down:
            skips.append(y)
            y = layer(y)
        y = self.blocks(y)
        for layer in self.up:
            y = layer(y) + skips.pop()
        y = torch.tanh(self.head(y))[..., :h, :w]
        if self.output == "one_sided":
            return ((y + 1) / 2).clamp(0.0, 2 * self.linf)
        return 2 * self.linf * y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``G_c(x) = x + G'_c(x)``, clipped to the [-1, 1] image range."""
        return (x + self.perturbation(x)).clamp(-1.0, 1.0)


class CalibratedModel(nn.Module):
    """``F_s o G_c``: what is deployed; ``model`` is never updated."""

    def __init__(self, calibrator: Calibrator, model: nn.Module) -> None:
        super().__init__()
        self.calibrator, self.model = calibrator, model
        self.num_classes = getattr(model, "num_classes", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.calibrator(x))


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def trace_deployed(model: CalibratedModel, example: torch.Tensor) -> torch.jit.ScriptModule:
    """One TorchScript module for deployment, traced on ``example`` (CPU). Shapes are recorded as
    traced, so the file is meant for inputs of ``example``'s size."""
    model = model.cpu().eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about shape arithmetic and deprecation
        return torch.jit.trace(model, example, check_trace=False)


def load_calibrated_model(path: str | Path, params: BackboneParams) -> tuple[CalibratedModel, dict]:
    """A calibrator checkpoint with the frozen model it was trained for (named in its meta):
    the deployed ``F_s o G_c``; returns (model, meta)."""
    ckpt = load_checkpoint(path)
    meta = ckpt["meta"]
    calibrator = Calibrator(**meta["calibrator"])
    calibrator.load_state_dict(ckpt["state"])
    frozen, _ = load_task_model(meta["frozen_model"], params)
    return CalibratedModel(calibrator, frozen), meta
