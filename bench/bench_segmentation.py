"""Throughput of the segmentation track (frames/s) per backbone, at the papers' resolutions.

    python bench/bench_segmentation.py                       # device: auto, every backbone
    python bench/bench_segmentation.py --device cpu --threads 2 --backbones lraspp_mobilenet_v3 drn26

For each backbone, one line per measurement:
- train step: forward + backward + SGD step on a batch of 512x1024 frames (CyCADA trains on
  frames scaled to width 1024; crops of 512x1024 here), mixed precision on a GPU;
- evaluation: the Cityscapes protocol, inference at 1024x512 with logits upsampled to 2048x1024
  and argmax there;
and once: translation, CycleGAN's G_S->T (64 filters, 9 residual blocks) on 1024x512 frames.
"""

from __future__ import annotations

import argparse
import torch
import torch.nn.functional as F

from pipeline_lib.models.cyclegan import ResnetGenerator
from pipeline_lib.models.segmenters import SEGMENTERS
from pipeline_lib.runtime import autocast, resolve_device
from timing import timed  # bench/timing.py


def report(what: str, batch: int, seconds: float) -> None:
    print(f"{what:<52} {batch / seconds:8.2f} frames/s  ({seconds * 1000:9.1f} ms per batch of {batch})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch", type=int, default=None, help="frames per batch (default: 1 on CPU, 4 on GPU)")
    parser.add_argument("--backbones", nargs="+", default=list(SEGMENTERS), choices=list(SEGMENTERS))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    batch = args.batch or (4 if device.type == "cuda" else 1)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; batch {batch}; {args.repeats} timed repeats after one warm-up")
    torch.manual_seed(0)
    for arch in args.backbones:
        model = SEGMENTERS[arch](19).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        x = torch.rand(batch, 3, 512, 1024, device=device) * 2 - 1
        y = torch.randint(0, 19, (batch, 512, 1024), device=device)

        def train_step(model=model, opt=opt) -> None:
            model.train()
            with autocast(device):
                loss = F.cross_entropy(model(x).float(), y, ignore_index=255)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        @torch.no_grad()
        def evaluate(model=model) -> None:
            model.eval()
            with autocast(device):
                logits = model(x).float()
            F.interpolate(logits, size=(1024, 2048), mode="bilinear", align_corners=False).argmax(1)

        report(f"{arch}: train step 512x1024", batch, timed(train_step, args.repeats, device))
        report(f"{arch}: evaluation 1024x512 -> 2048x1024", batch, timed(evaluate, args.repeats, device))
        del model, opt, train_step, evaluate
    generator = ResnetGenerator(3, 3, ngf=64, n_down=2, n_blocks=9).to(device).eval()
    frames = torch.rand(batch, 3, 512, 1024, device=device) * 2 - 1

    @torch.no_grad()
    def translate() -> None:
        with autocast(device):
            generator(frames)

    report("translation: G_S->T (ngf 64, 9 blocks) 1024x512", batch, timed(translate, args.repeats, device))


if __name__ == "__main__":
    main()
