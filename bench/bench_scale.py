"""GTA5 -> Cityscapes at the real file counts, on stand-ins: prepare, loaders, translation writes, peak memory.

    python bench/bench_scale.py                          # 24,966 GTA5 + 2,975/500 Cityscapes frames at 1/8 size
    python bench/bench_scale.py --scale 16 --frames 0.2  # smaller frames, a fifth of the counts (a quick look)
    python bench/bench_scale.py --flops                  # the cost table's GFLOPs, parameters, activations per net
    python bench/bench_scale.py --gpu-steps 50           # + the paper profile's steps on a GPU (skipped without)

Stand-ins in the official layouts (GTA5 ``images/`` + ``labels/``, Cityscapes ``leftImg8bit/`` + ``gtFine/`` per
split and city) go into a temporary folder: ``--distinct`` street scenes from the embedded renderer (its photo style,
with noise and JPEG artefacts, so that PNGs compress about as badly as real frames; labels as Cityscapes label ids),
each scaled to 1/``--scale`` of the datasets' sizes (1914x1052, 2048x1024) and hard-linked under every other name
(decode cost does not depend on a file being unique; the page cache then holds the few distinct files, so disk
reads are left out: a cold GTA5 copy is tens of GB of PNG).

Timed: ``prepare``'s content manifest (:func:`~pipeline_lib.domains.manifest.content_digest`: cold, then a refresh
that finds nothing changed; frames counted as image + label pairs), index
(:func:`~pipeline_lib.domains.frames.build_index`) and frame check
(:func:`~pipeline_lib.domains.validation.check_frames`) per worker count; the paper profile's training loader
(``segmentation.train_supervised``: max_width, crop, flip scaled by 1/scale) and translation loader in frames/s;
the translated set's shard writer (:class:`~pipeline_lib.artifacts.ShardWriter`, full translation size 1024x563) in
MB/s; the process's peak RSS and its largest child's (DataLoader workers). Full resolution: a fit of prepare's
per-frame time as ``a + b x megapixels`` on GTA5 stand-ins at 1/scale and 1/2 of the full size (decode cost grows
with pixels; ``a`` is the per-frame overhead) gives how much slower a full frame is. The content manifest of raw
data is measured by its own script (``bench/manifest.py``) where present.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from PIL import Image

from pipeline_lib.artifacts import ShardWriter
from pipeline_lib.config import FrameParams, Params, parse_params
from pipeline_lib.domains.frames import build_index, frame_transform, open_frames
from pipeline_lib.domains.resolve import resolve_domain
from pipeline_lib.domains.scenes import build_scenes
from pipeline_lib.domains.segmentation import CITYSCAPES_LABEL_TO_TRAIN_ID
from pipeline_lib.domains.validation import check_frames

ROOT = Path(__file__).resolve().parents[1]
GTA5 = (1052, 1914, 24966)  # height, width, frames
CITYSCAPES = (1024, 2048, 2975, 500)  # height, width, train, val
TRANSLATED = (563, 1024)  # GTA5 at segmentation.cycada.translate.max_width 1024
CITIES = ("aachen", "bochum", "bremen", "cologne", "darmstadt")


def peak_mb() -> tuple[float, float]:
    """Peak RSS of this process and of its largest finished child (DataLoader workers), MB."""
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


def label_ids(train_ids: np.ndarray) -> np.ndarray:
    """Train ids (0..18, 255) as Cityscapes label ids (the first id of each train id; 255 -> 0, unlabelled)."""
    inverse = np.zeros(256, np.uint8)
    for label_id in range(255, -1, -1):
        train = CITYSCAPES_LABEL_TO_TRAIN_ID[label_id]
        if train != 255:
            inverse[train] = label_id
    return inverse[train_ids]


def _fill(files: list[tuple[Path, Path]], sources: list[tuple[Path, Path]]) -> None:
    """Hard-link ``sources`` (cycled) under every (image, label) name of ``files``."""
    for k, (image, label) in enumerate(files):
        image.parent.mkdir(parents=True, exist_ok=True)
        label.parent.mkdir(parents=True, exist_ok=True)
        src_image, src_label = sources[k % len(sources)]
        if not image.exists():
            image.hardlink_to(src_image)
            label.hardlink_to(src_label)


def _render(folder: Path, style: str, distinct: int, height: int, width: int) -> list[tuple[Path, Path]]:
    images, masks, _, _ = build_scenes(style, distinct, 1, seed=1, height=height, width=width)  # type: ignore[arg-type]
    folder.mkdir(parents=True)
    out = []
    for k in range(distinct):
        pair = (folder / f"{k}.png", folder / f"{k}_ids.png")
        Image.fromarray(images[k]).save(pair[0])
        Image.fromarray(label_ids(masks[k])).save(pair[1])
        out.append(pair)
    return out


def write_standins(root: Path, scale: int, fraction: float, distinct: int) -> dict[str, Any]:
    """GTA5 and Cityscapes stand-ins under ``root``; returns their sizes and the seconds it took."""
    start = time.perf_counter()
    gh, gw, gn = GTA5
    ch, cw, ctrain, cval = CITYSCAPES
    gta = _render(root / "distinct_gta", "photo", distinct, round(gh / scale), round(gw / scale))
    city = _render(root / "distinct_city", "photo", distinct, round(ch / scale), round(cw / scale))
    n = max(2, round(gn * fraction))
    _fill([(root / "gta5/images" / f"{i:05d}.png", root / "gta5/labels" / f"{i:05d}.png") for i in range(1, n + 1)],
          gta)
    for split, count in (("train", round(ctrain * fraction)), ("val", round(cval * fraction))):
        names = [(CITIES[i % len(CITIES)], f"{CITIES[i % len(CITIES)]}_{i:06d}_000019") for i in range(max(1, count))]
        _fill([(root / "cityscapes/leftImg8bit" / split / c / f"{s}_leftImg8bit.png",
                root / "cityscapes/gtFine" / split / c / f"{s}_gtFine_labelIds.png") for c, s in names], city)
    return {"gta5": n, "cityscapes": (max(1, round(ctrain * fraction)), max(1, round(cval * fraction))),
            "seconds": time.perf_counter() - start}


def calibrate_decode(root: Path, scales: tuple[int, ...], frames: int) -> tuple[float, float]:
    """Seconds per frame of prepare's frame check (0 workers) as ``a + b * megapixels``, fitted on GTA5 stand-ins
    at two sizes: the per-frame overhead ``a`` and the decode cost per megapixel ``b``."""
    points = []
    for scale in scales:
        folder = root / f"calibrate{scale}"
        gh, gw, _ = GTA5
        height, width = round(gh / scale), round(gw / scale)
        made = _render(folder / "distinct", "photo", 4, height, width)
        _fill([(folder / "gta5/images" / f"{i:05d}.png", folder / "gta5/labels" / f"{i:05d}.png")
               for i in range(frames)], made)
        params = bench_params(folder, 1)
        check_frames(resolve_domain(params, "gta5"), build_index(params, "gta5"), 0, progress=False)  # warm-up
        check = check_frames(resolve_domain(params, "gta5"), build_index(params, "gta5"), 0, progress=False)
        points.append((height * width / 1e6, check.seconds / check.frames))
        png = sum(p.stat().st_size for p, _ in made) / len(made) / (height * width)
        print(f"decode calibration: {frames} GTA5 frames of {width}x{height} ({png:.2f} bytes of PNG per pixel): "
              f"{1e3 * points[-1][1]:.1f} ms per frame", flush=True)
    (m0, t0), (m1, t1) = points
    b = (t1 - t0) / (m1 - m0)
    return max(0.0, t0 - b * m0), b


def bench_params(root: Path, test_frames: int) -> Params:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["profile"] = "paper"
    raw["data"]["roots"].update(gta5=str(root / "gta5"), cityscapes=str(root / "cityscapes"))
    raw["prepare"]["gta5"] = {"test_frames": test_frames}
    return parse_params(raw)


def row(what: str, frames: int, seconds: float, full_factor: float | None = None) -> None:
    rate = frames / seconds if seconds else float("inf")
    full = f"{rate / full_factor:10.1f}" if full_factor else " " * 10
    rss, child = peak_mb()
    print(f"| {what:<58} | {frames:7d} | {seconds:8.1f} | {rate:9.1f} | {full} | {rss:6.0f} | {child:6.0f} |",
          flush=True)


def bench_prepare(params: Params, workers: list[int], slower: dict[str, float]) -> None:
    """Index and frame check per dataset (``slower``: how much longer a full-size frame of each takes)."""
    from pipeline_lib.domains.manifest import content_digest

    for name in ("gta5", "cityscapes"):
        root = resolve_domain(params, name).root
        frames = sum(1 for f in Path(root).rglob("*") if f.is_file()) // 2  # type: ignore[arg-type]
        for state in ("cold: every file hashed", "refresh: nothing changed"):
            start = time.perf_counter()
            content_digest(name, root)  # what prepare_index records (and the Snakefile's manifest refresh scans)
            row(f"prepare {name}: content manifest, {state}", frames, time.perf_counter() - start)
        start = time.perf_counter()
        index = build_index(params, name)
        count = sum(index["counts"].values())
        row(f"prepare {name}: index (layout, pairing, split)", count, time.perf_counter() - start)
        domain = resolve_domain(params, name)
        for w in workers:
            check = check_frames(domain, index, w, progress=False)
            row(f"prepare {name}: frame check, {w} worker(s)", check.frames, check.seconds, slower[name])


def bench_loaders(params: Params, scale: int, frames: int, workers: list[int], slower: float) -> None:
    """The paper profile's training loader (crop and max_width scaled down) and the translation loader."""
    from torch.utils.data import DataLoader

    from pipeline_lib.domains.loading import frames_for_translation
    from pipeline_lib.domains.frames import write_index
    cfg = params.segmentation.train_supervised  # type: ignore[union-attr]
    crop = (cfg.crop[0] // scale, cfg.crop[1] // scale) if cfg.crop else None
    scaled = FrameParams(max_width=(cfg.max_width or 1024) // scale, crop=crop, flip=True)
    domain = resolve_domain(params, "gta5")
    domain.artifact.parent.mkdir(parents=True, exist_ok=True)
    write_index(domain.artifact, build_index(params, "gta5"))
    backbone = params.backbones["street"]
    for w in workers:
        data = open_frames(domain, "train", frame_transform(scaled, train=True, flip=True))
        loader = DataLoader(data, batch_size=cfg.batch_size, shuffle=True, num_workers=w, drop_last=True)
        row(f"train loader (gta5, batch {cfg.batch_size}, crop {crop}), {w} worker(s)", *_drain(loader, frames),
            slower)
    translate = params.segmentation.cycada.translate  # type: ignore[union-attr]
    data = frames_for_translation(domain, backbone, (translate.max_width or 1024) // scale)
    loader = DataLoader(data, batch_size=translate.batch_size, num_workers=max(workers), shuffle=False)
    row(f"translation loader (gta5, batch {translate.batch_size}), {max(workers)} worker(s)",
        *_drain(loader, frames), slower)


def _drain(loader: Iterable, frames: int) -> tuple[int, float]:
    """(frames read, seconds) for reading at least ``frames`` frames from ``loader``."""
    start, seen = time.perf_counter(), 0
    for images, _ in loader:
        seen += len(images)
        if seen >= frames:
            break
    return seen, time.perf_counter() - start


def bench_shards(folder: Path, frames: int, shard_size: int) -> float:
    """MB/s of the translated set's shard writer at the full translation size; returns it."""
    h, w = TRANSLATED
    needed = frames * h * w * 4
    free = shutil.disk_usage(folder).free
    if free < 2 * needed:
        print(f"(shard write: {needed / 1e9:.1f} GB wanted, {free / 1e9:.1f} GB free: fewer frames)")
        frames = max(shard_size, int(free / 2 / (h * w * 4)) // shard_size * shard_size)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 3, h, w), dtype=np.uint8)
    labels = rng.integers(0, 19, (8, h, w), dtype=np.uint8)
    start = time.perf_counter()
    with ShardWriter(folder / "translated", shard_size, {"bench": True}) as writer:
        for _ in range(frames // 8):
            writer.add(images, labels)
        writer.close()
    seconds = time.perf_counter() - start
    mb = frames * h * w * 4 / 1e6
    row(f"translated set write, {w}x{h}, shards of {shard_size} (sha256 incl.)", frames, seconds)
    print(f"  -> {mb / seconds:.0f} MB/s ({mb:.0f} MB); GTA5's 24,466 frames ({24466 * h * w * 4 / 1e9:.1f} GB): "
          f"{24466 * h * w * 4 / 1e6 / (mb / seconds) / 60:.1f} min of writing", flush=True)
    shutil.rmtree(folder / "translated")
    return mb / seconds


def count_flops() -> None:
    """Forward GFLOPs per megapixel (2 x multiply-adds), parameters and activation floats per pixel per net."""
    from torch.utils.flop_counter import FlopCounterMode

    from pipeline_lib.models.calibrator import Calibrator
    from pipeline_lib.models.cyclegan import ImageDiscriminator, ResnetGenerator
    from pipeline_lib.models.segmenters import SEGMENTERS
    nets = {arch: SEGMENTERS[arch](19) for arch in SEGMENTERS}
    nets |= {"cyclegan_g": ResnetGenerator(3, 3, ngf=64, n_down=2, n_blocks=9),
             "cyclegan_d": ImageDiscriminator(3, ndf=64, n_layers=5),
             "calibrator": Calibrator(3, ngf=8, n_down=2, n_blocks=2)}
    h, w = 128, 256
    x = torch.rand(1, 3, h, w)
    print(f"models:   # counted at {w}x{h} on CPU by bench/bench_scale.py --flops")
    for name, net in nets.items():
        net.eval()
        outputs = [0]

        def hook(module: Any, inputs: Any, out: Any) -> None:
            if isinstance(out, torch.Tensor):
                outputs[0] += out.numel()
        handles = [m.register_forward_hook(hook) for m in net.modules() if not list(m.children())]
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            net(x)
        for handle in handles:
            handle.remove()
        print(f"  {name}: {{gflops_per_mpix: {counter.get_total_flops() / 1e9 / (h * w / 1e6):.1f}, params: "
              f"{sum(p.numel() for p in net.parameters())}, activations_per_pixel: {outputs[0] / (h * w):.0f}}}")


def gpu_steps(steps: int, device: torch.device, shrink: int = 1) -> None:
    """The paper profile's heaviest steps on full-resolution stand-in frames; prints frames/s per rule and the
    ``measured:`` lines for pipeline_lib/plan_costs.yaml. ``shrink`` > 1 divides every side (a quick CPU check of
    this code; its figures are not the paper profile's)."""
    import torch.nn.functional as F

    from pipeline_lib.models.cyclegan import ImageDiscriminator, ResnetGenerator
    from pipeline_lib.models.segmenters import SEGMENTERS
    from pipeline_lib.runtime import autocast
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    frames, masks, _, _ = build_scenes("game", 8, 1, seed=1, height=512 // shrink, width=1024 // shrink)
    crop = 400 // shrink // 4 * 4  # the generators need sides divisible by 4
    x = (torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1).to(device)
    y = torch.from_numpy(masks).long().to(device)
    measured = {}

    def timed(step: Any, batch: int) -> float:
        step()  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return steps * batch / (time.perf_counter() - start)

    net = SEGMENTERS["drn26"](19).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)

    def supervised() -> None:  # train_supervised / train_task: batch 8 of 512x1024 crops
        with autocast(device):
            loss = F.cross_entropy(net(x).float(), y, ignore_index=255)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    measured["train_supervised"] = measured["train_task"] = timed(supervised, len(x))
    g_st, g_ts = (ResnetGenerator(3, 3, ngf=64, n_down=2, n_blocks=9).to(device) for _ in range(2))
    d_s, d_t = (ImageDiscriminator(3, ndf=64, n_layers=5).to(device) for _ in range(2))
    opt_g = torch.optim.Adam([*g_st.parameters(), *g_ts.parameters()], 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam([*d_s.parameters(), *d_t.parameters()], 2e-4, betas=(0.5, 0.999))
    xs, xt = x[:1, :, :crop, :crop], x[1:2, :, :crop, :crop]

    def cyclegan() -> None:  # train_cyclegan: batch 1 of 400x400 crops, LSGAN, cycle x10
        with autocast(device):
            fake_t, fake_s = g_st(xs), g_ts(xt)
            loss_g = ((d_t(fake_t) - 1) ** 2).mean() + ((d_s(fake_s) - 1) ** 2).mean() + 10 * (
                (g_ts(fake_t) - xs).abs().mean() + (g_st(fake_s) - xt).abs().mean())
        opt_g.zero_grad(set_to_none=True)
        loss_g.float().backward()
        opt_g.step()
        with autocast(device):
            loss_d = sum(((d(real) - 1) ** 2).mean() + (d(fake.detach()) ** 2).mean()
                         for d, real, fake in ((d_t, xt, fake_t), (d_s, xs, fake_s)))
        opt_d.zero_grad(set_to_none=True)
        loss_d.float().backward()
        opt_d.step()
    measured["train_cyclegan"] = timed(cyclegan, 1)
    frames_t = F.interpolate(x[:4], size=(TRANSLATED[0] // shrink, TRANSLATED[1] // shrink), mode="bilinear")

    @torch.no_grad()
    def translate() -> None:  # translate: batch 4 at 1024x563
        with autocast(device):
            g_st(frames_t)
    measured["translate"] = timed(translate, 4)

    @torch.no_grad()
    def evaluate() -> None:  # evaluate / select: inference at 1024x512
        with autocast(device):
            net.eval()(x[:4]).float()
        net.train()
    measured["evaluate"] = measured["select"] = timed(evaluate, 4)
    print(f"measured on {name}, {steps} steps each after a warm-up (frames/s)"
          + (f"; sides / {shrink}: a check of the code, not the paper profile's figures" if shrink > 1 else ""))
    print("measured:   # pipeline_lib/plan_costs.yaml")
    for rule, rate in measured.items():
        arch = "'*'" if rule in ("train_cyclegan", "translate") else "drn26"
        print(f"  {rule}: {{frames_per_s: {rate:.2f}, gpu: {name!r}, arch: {arch}, source: bench_scale.py --gpu-steps "
              f"{steps}}}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=8, help="frames at 1/scale of the datasets' sides")
    parser.add_argument("--frames", type=float, default=1.0, help="fraction of the real file counts")
    parser.add_argument("--distinct", type=int, default=40, help="scenes rendered per dataset (then hard-linked)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--loader-frames", type=int, default=2000, help="frames drawn per loader measurement")
    parser.add_argument("--write-frames", type=int, default=500, help="frames written at full translation size")
    parser.add_argument("--calibrate-frames", type=int, default=100, help="frames per size of the decode fit")
    parser.add_argument("--flops", action="store_true", help="only count the nets (the cost table's models)")
    parser.add_argument("--gpu-steps", type=int, default=0, help="steps of the paper profile's nets on a GPU")
    parser.add_argument("--gpu-only", action="store_true", help="with --gpu-steps: skip the CPU measurements")
    parser.add_argument("--device", default="cuda", help="--gpu-steps device (cpu: a check of the code path)")
    parser.add_argument("--gpu-shrink", type=int, default=1, help="--gpu-steps frames' sides divided by this")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as a stage runs (threads_per_job: 1)
    if args.flops:
        count_flops()
        return
    if not args.gpu_only:
        with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
            root = Path(tmp)
            made = write_standins(root, args.scale, args.frames, args.distinct)
            print(f"stand-ins: GTA5 {made['gta5']} frames of {round(GTA5[1] / args.scale)}x"
                  f"{round(GTA5[0] / args.scale)}, Cityscapes {made['cityscapes'][0]} train + {made['cityscapes'][1]} "
                  f"val of {round(CITYSCAPES[1] / args.scale)}x{round(CITYSCAPES[0] / args.scale)} ({args.distinct} "
                  f"distinct each, hard-linked), written in {made['seconds']:.1f} s; torch {torch.__version__}, "
                  f"1 thread, {sys.platform}", flush=True)
            a, b = calibrate_decode(root, (args.scale, 2), args.calibrate_frames)
            gta_mp, city_mp = GTA5[0] * GTA5[1] / 1e6, CITYSCAPES[0] * CITYSCAPES[1] / 1e6
            slower = {"gta5": (a + b * gta_mp) / (a + b * gta_mp / args.scale ** 2),
                      "cityscapes": (a + b * city_mp) / (a + b * city_mp / args.scale ** 2)}
            print(f"fit: {1e3 * a:.1f} ms per frame + {1e3 * b:.1f} ms per megapixel (prepare's check, 0 workers): a "
                  f"full GTA5 frame {1e3 * (a + b * gta_mp):.0f} ms, Cityscapes {1e3 * (a + b * city_mp):.0f} ms; "
                  "the full-res column divides by those ratios")
            print("\n| measurement | frames | s | frames/s | full-res frames/s | peak RSS MB | largest child MB |\n"
                  "|---|---:|---:|---:|---:|---:|---:|")
            params = bench_params(root, max(1, round(500 * args.frames)))
            cwd = os.getcwd()
            os.chdir(root)  # the loaders' index goes to <tmp>/data/domains, not the project's
            try:
                bench_prepare(params, args.workers, slower)
                bench_loaders(params, args.scale, args.loader_frames, args.workers, slower["gta5"])
                bench_shards(root, args.write_frames, min(250, args.write_frames))
            finally:
                os.chdir(cwd)
    if args.gpu_steps:
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            print(f"--gpu-steps {args.gpu_steps}: no GPU here (torch.cuda.is_available() is False); skipped")
            return
        gpu_steps(args.gpu_steps, device, args.gpu_shrink)


if __name__ == "__main__":
    main()
