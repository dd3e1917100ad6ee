"""The LeNet variant CyCADA uses for all digit shifts.

Hoffman et al., "CyCADA: Cycle-Consistent Adversarial Domain Adaptation", ICML 2018,
Fig. 7 (left) and appendix 6.1.1; layer sizes as in the authors' release
(conv 20@5x5 -> pool -> relu -> conv 50@5x5 -> dropout -> pool -> relu -> fc 500 -> relu ->
dropout -> fc classes). The 500-d ``fc1`` output is the encoder feature the feature
discriminator sees.

Inputs enter channels-last (NHWC in memory): on the CPU oneDNN's convolutions and PyTorch's max pooling run
faster that way (a training step of 128 RGB 32x32 digits on one thread: 84 ms -> 59 ms; of grey 28x28 digits
53 -> 51 ms; ``python bench/bench_digits.py --device cpu --threads 1``). The function is the same; only float
rounding differs from NCHW.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from pipeline_lib.models.base import ChainModel


class LeNet(ChainModel):
    FEATURE_DIM = 500

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28) -> None:
        side = ((image_size - 4) // 2 - 4) // 2
        if side < 1:
            raise ValueError(f"LeNet needs images of at least 16x16, got {image_size}")
        # Each stage ends in its linear op (pooling commutes with ReLU and with any per-channel
        # positive affine), so GAM's per-channel scale and shift folds into that op exactly;
        # the ReLUs open the next stage. The function is the release's conv-pool-relu net.
        stages = OrderedDict(
            conv1=nn.Sequential(nn.Conv2d(in_channels, 20, kernel_size=5), nn.MaxPool2d(2)),
            conv2=nn.Sequential(nn.ReLU(), nn.Conv2d(20, 50, kernel_size=5), nn.Dropout2d(p=0.5), nn.MaxPool2d(2)),
            fc1=nn.Sequential(nn.ReLU(), nn.Flatten(), nn.Linear(50 * side * side, self.FEATURE_DIM)),
            logits=nn.Sequential(nn.ReLU(), nn.Dropout(p=0.5), nn.Linear(self.FEATURE_DIM, num_classes)),
        )
        super().__init__(stages, task="classification", num_classes=num_classes,
                         in_channels=in_channels, encoder_layer="fc1")
        self.image_size = image_size

    def _stage(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if name == "conv1":
            x = x.contiguous(memory_format=torch.channels_last)
        return super()._stage(name, x)
