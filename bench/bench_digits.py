"""Throughput of the digits track's hot loops (images/s), on the CPU or the GPU.

    python bench/bench_digits.py                 # device: auto
    python bench/bench_digits.py --device cpu --threads 2

Prints one line per measurement: LeNet training step (channels-last, as the pipeline runs it, and in the
NCHW layout for comparison), LeNet evaluation, CycleGAN step at the demo and paper generator sizes, and
translation (G_S->T forward).
"""

from __future__ import annotations

import argparse
import torch

from pipeline_lib.methods.cycada_params import CycleGANParams, GeneratorParams, ImageDiscriminatorParams
from pipeline_lib.methods.cycada import CycleGAN, CycleGANStep, translate
from pipeline_lib.models.base import ChainModel
from pipeline_lib.models.lenet import LeNet
from pipeline_lib.runtime import resolve_device
from timing import timed  # bench/timing.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(f"device {device}, torch threads {torch.get_num_threads()}")

    for channels, size in [(1, 28), (3, 32)]:
        model = LeNet(in_channels=channels, image_size=size).to(device)
        opt = torch.optim.Adam(model.parameters(), 1e-4)
        x = torch.randn(128, channels, size, size, device=device)
        y = torch.randint(0, 10, (128,), device=device)

        def step() -> None:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()

        sec = timed(step, args.repeats * 4, device)
        print(f"LeNet {channels}x{size}x{size} train step, batch 128: {sec * 1e3:.1f} ms, {128 / sec:.0f} images/s")
        model._stage = lambda name, h: ChainModel._stage(model, name, h)  # the NCHW layout LeNet used before
        sec = timed(step, args.repeats * 4, device)
        print(f"  the same in NCHW: {sec * 1e3:.1f} ms, {128 / sec:.0f} images/s")
        del model._stage
        xe = torch.randn(512, channels, size, size, device=device)
        with torch.no_grad():
            sec = timed(lambda: model.eval()(xe), args.repeats * 4, device)
        print(f"LeNet {channels}x{size}x{size} evaluation, batch 512: {512 / sec:.0f} images/s")

    for label, ngf, batch in [("demo", 16, 32), ("paper", 64, 100)]:
        params = CycleGANParams(generator=GeneratorParams(ngf=ngf), discriminator=ImageDiscriminatorParams(ndf=ngf),
                                batch_size=batch, epochs=1)
        net = CycleGAN.build(3, params).to(device)
        f_s = LeNet(in_channels=3, image_size=32).to(device).eval()
        step = CycleGANStep.build(net, f_s, params, device, seed=0)
        xs, xt = torch.randn(batch, 3, 32, 32, device=device), torch.randn(batch, 3, 32, 32, device=device)
        ys = torch.randint(0, 10, (batch,), device=device)
        sec = timed(lambda: step.update(xs, ys, xt, where="bench"), args.repeats, device)
        print(f"CycleGAN step ({label}: ngf {ngf}, batch {batch}, 32x32 RGB): {sec:.3f} s, {batch / sec:.0f} images/s")
        images = torch.randn(2048, 3, 32, 32)
        sec = timed(lambda: translate(net.g_st, images, device, 256), 1, device)
        print(f"translation ({label} generator): {2048 / sec:.0f} images/s")


if __name__ == "__main__":
    main()
