"""``prepare`` decodes every frame of a real or folder segmentation domain once, before any stage trains on it.

Without this check a truncated PNG, an RGB label, a label id outside the class list or an image whose
size differs from its label's is found only when training or evaluation reads that frame, hours later.
:func:`check_frames` reads each (image, label) pair the index lists, in both splits, through the
dataset's own reader (:mod:`pipeline_lib.domains.segmentation`), so it accepts and rejects exactly what
training will: images are converted to RGB as the readers do (grey, palette and RGBA images pass);
labels must be single-channel or palette PNGs of label ids (SYNTHIA: 16-bit, class id in channel 0);
an image must have its label's size, except where the reader resizes it (GTA5's few odd frames); and
every label id must map to a class or be ignored (a folder domain: its ``ids`` and ``ignore_id``;
Cityscapes, GTA5, SYNTHIA: their label tables, where ids without a train id are legitimately ignored).

Frames are decoded in DataLoader worker processes (``prepare.validate_workers``) with a tqdm bar.
The first bad file stops ``prepare`` with one line naming it, the problem and the fix (plus how many
more bad frames were seen, scanning on up to :data:`MAX_BAD` of them so a systematic problem stops early);
a clean domain's index records what was checked (``"validated"``), including a summary of its frame sizes.
``prepare.validate_frames.<domain>: false`` skips the check for a dataset the user trusts.

The record holds no timing (the index must be the same bytes whenever its inputs are, so that DVC does not
rerun the stages that read it); :class:`FrameCheck` carries the seconds for the stage's log line.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from pipeline_lib.domains import segmentation as seg
from pipeline_lib.domains.frames import indexed_frames
from pipeline_lib.domains.resolve import Domain
from pipeline_lib.errors import PipelineError

__all__ = ["MAX_BAD", "FrameCheck", "check_frames"]

#: stop scanning after this many bad frames (a wrong folder or colour labels show in the first ones)
MAX_BAD = 20
#: frame sizes listed per split in the record (the most common ones; the rest are counted together)
SIZES_SHOWN = 10
SPLITS = ("train", "test")

#: one frame's outcome: (split, label size (w, h) or None, image resized to its label, error line or None, image)
Outcome = tuple[str, tuple[int, int] | None, bool, str | None, str]


@dataclass(frozen=True)
class FrameCheck:
    """What :func:`check_frames` found: ``record`` goes into the index, ``seconds`` into the log."""

    record: dict[str, Any]
    seconds: float
    num_workers: int

    @property
    def frames(self) -> int:
        return int(self.record["frames"])

    @property
    def frames_per_second(self) -> float:
        return self.frames / max(self.seconds, 1e-9)


class _Checked(Dataset):
    """Item ``k``: one indexed frame decoded by its dataset's reader, reduced to a picklable :data:`Outcome`."""

    def __init__(self, datasets: dict[str, seg.SegmentationDataset]) -> None:
        self.datasets = datasets
        self.items = [(split, i) for split, data in datasets.items() for i in range(len(data))]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k: int) -> Outcome:
        split, i = self.items[k]
        data = self.datasets[split]
        image_path, label_path = data.samples[i]
        try:
            _, mask = data[i]  # untransformed: exactly the decoding and checks training runs
            h, w = (int(v) for v in mask.shape[-2:])
            resized = False
            if data.resize_image_to_label:
                with Image.open(image_path) as im:  # the header only
                    resized = im.size != (w, h)
            return split, (w, h), resized, None, str(image_path)
        except PipelineError as exc:
            return split, None, False, str(exc), str(image_path)
        except Exception as exc:  # noqa: BLE001 - an odd file the reader does not expect: still one line, no traceback
            detail = " ".join(f"{type(exc).__name__}: {exc}".split())
            return (split, None, False, f"frame {image_path} with label {label_path} cannot be read ({detail}); "
                    "re-download or delete both files", str(image_path))


def _as_is(outcome: Outcome) -> Outcome:
    return outcome


def _sizes(sizes: Counter[tuple[int, int]]) -> dict[str, int]:
    """The :data:`SIZES_SHOWN` most common sizes as ``{"WxH": frames}`` (then ``"other": frames``), deterministic."""
    ranked = sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = {f"{w}x{h}": n for (w, h), n in ranked[:SIZES_SHOWN]}
    rest = sum(n for _, n in ranked[SIZES_SHOWN:])
    return {**shown, "other": rest} if rest else shown


def _failure(domain: Domain, bad: list[tuple[str, str]], root: Path, scanned: int, total: int) -> PipelineError:
    first, more = bad[0][0], [image for _, image in bad[1:]]
    if not more:
        return PipelineError(f"{domain.name}: {first}")
    names = ", ".join(_relative(p, root) for p in more[:3]) + (", ..." if len(more) > 3 else "")
    stopped = f", stopped after {scanned} of {total} frames" if scanned < total else ""
    return PipelineError(f"{domain.name}: {first} [{len(more)} more bad frame(s){stopped}: {names}]")


def _relative(path: str, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


def check_frames(domain: Domain, index: dict[str, Any], num_workers: int = 0, progress: bool = True) -> FrameCheck:
    """Decode every frame ``index`` lists for ``domain`` (both splits) in ``num_workers`` DataLoader workers.

    Returns the :class:`FrameCheck` whose ``record`` the index keeps; a bad file is a one-line
    :class:`PipelineError` naming it, the problem and the fix (see the module docstring).
    """
    datasets = {split: indexed_frames(domain, index, split) for split in SPLITS}
    root = Path(datasets["train"].root)  # type: ignore[attr-defined]
    checked = _Checked(datasets)
    total = len(checked)
    sizes: dict[str, Counter[tuple[int, int]]] = {split: Counter() for split in SPLITS}
    resized: Counter[str] = Counter()
    bad: list[tuple[str, str]] = []
    scanned = 0
    start = time.perf_counter()
    loader = DataLoader(checked, batch_size=None, shuffle=False, num_workers=num_workers, collate_fn=_as_is)
    with tqdm(total=total, desc=f"validate {domain.name}", unit="frame", disable=not progress, dynamic_ncols=True,
              mininterval=2) as bar:
        outcomes = iter(loader)
        try:
            for split, size, was_resized, error, image in outcomes:
                scanned += 1
                bar.update()
                if error is not None:
                    bad.append((error, image))
                    if len(bad) >= MAX_BAD:
                        break
                    continue
                assert size is not None
                sizes[split][size] += 1
                resized[split] += was_resized
        except RuntimeError as exc:  # a worker killed (out of memory, a crashing decoder): no frame to blame yet
            detail = " ".join(str(exc).split())
            raise PipelineError(f"{domain.name}: checking its frames failed after {scanned} of {total} ({detail}); "
                                "set prepare.validate_workers: 0 to decode them in the stage's own process "
                                "(less memory), or free memory and rerun") from None
        finally:
            del outcomes  # stops the workers at once when the scan ends early
    seconds = time.perf_counter() - start
    if bad:
        raise _failure(domain, bad, root, scanned, total)
    splits: dict[str, Any] = {}
    for split in SPLITS:
        splits[split] = {"frames": len(datasets[split]), "sizes": _sizes(sizes[split])}
        if datasets[split].resize_image_to_label:
            splits[split]["resized_to_label"] = resized[split]
    return FrameCheck(record={"frames": total, "splits": splits}, seconds=seconds, num_workers=num_workers)
