"""Class tables shared by every domain: light to import (pure Python, no numpy/torch/PIL).

The Cityscapes names and colours come from the official ``cityscapesscripts`` package's label
table (``cityscapesscripts.helpers.labels``, a plain namedtuple list); the DAG builder reads
them through :mod:`pipeline_lib.domains.resolve` on every Snakemake parse.
"""

from __future__ import annotations

from cityscapesscripts.helpers.labels import labels as _CITYSCAPES_LABELS

Color = tuple[int, int, int]

#: pixels of a mask that are not scored (the papers' and Cityscapes' ignore label)
IGNORE_INDEX = 255
NUM_DIGIT_CLASSES = 10
DIGIT_CLASSES: tuple[str, ...] = tuple(str(i) for i in range(NUM_DIGIT_CLASSES))


def _cityscapes_classes() -> tuple[tuple[str, ...], tuple[Color, ...]]:
    """Names and colours of the 19 Cityscapes train ids, in train-id order."""
    by_train_id: dict[int, object] = {}
    for label in _CITYSCAPES_LABELS:
        if not 0 <= label.id <= 255 or label.trainId in (-1, IGNORE_INDEX):
            continue
        by_train_id.setdefault(label.trainId, label)
    if sorted(by_train_id) != list(range(19)):  # the package's table changed shape
        raise RuntimeError(f"cityscapesscripts lists train ids {sorted(by_train_id)}, expected 0..18")
    ordered = [by_train_id[t] for t in range(19)]
    names = tuple(label.name for label in ordered)  # type: ignore[attr-defined]
    colors = tuple(tuple(int(c) for c in label.color) for label in ordered)  # type: ignore[attr-defined]
    return names, colors  # type: ignore[return-value]


CITYSCAPES_CLASSES, CITYSCAPES_PALETTE = _cityscapes_classes()
NUM_CITYSCAPES_CLASSES = len(CITYSCAPES_CLASSES)

#: SYNTHIA-RAND-CITYSCAPES class id -> Cityscapes train id: the 16-class mapping used by
#: common SYNTHIA->Cityscapes code (e.g. AdaptSegNet/ADVENT; DAFormer's convert script
#: uses the same pairs). SYNTHIA ids 0 void, 13 parking-slot, 14 road-work, 16 terrain,
#: 18 truck, 20 train and 22 lane-marking are ignored.
SYNTHIA_TO_TRAIN_ID: dict[int, int] = {
    3: 0,  # road
    4: 1,  # sidewalk
    2: 2,  # building
    21: 3,  # wall
    5: 4,  # fence
    7: 5,  # pole
    15: 6,  # traffic light
    9: 7,  # traffic sign
    6: 8,  # vegetation
    1: 10,  # sky
    10: 11,  # person (SYNTHIA "pedestrian")
    17: 12,  # rider
    8: 13,  # car
    19: 15,  # bus
    12: 17,  # motorcycle
    11: 18,  # bicycle
}

#: The 16 Cityscapes train ids scored for SYNTHIA -> Cityscapes (no terrain 9, truck 14, train 16).
SYNTHIA_EVAL_CLASSES: tuple[int, ...] = tuple(sorted(SYNTHIA_TO_TRAIN_ID.values()))


def default_palette(num_classes: int) -> tuple[Color, ...]:
    """Distinct deterministic colours for any class count (the PASCAL VOC bit-interleaving scheme)."""
    colors = []
    for i in range(num_classes):
        r = g = b = 0
        c = i + 1  # skip black, which reads as "nothing" (ignored pixels are drawn black)
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colors.append((r, g, b))
    return tuple(colors)


def palette_for(classes: tuple[str, ...]) -> tuple[Color, ...]:
    """The Cityscapes palette for the Cityscapes classes, else :func:`default_palette`."""
    return CITYSCAPES_PALETTE if tuple(classes) == CITYSCAPES_CLASSES else default_palette(len(classes))
