"""Label and part ids of the scenes domain: the 19 Cityscapes train ids, the ignore label and sub-object parts.

Class names and colours are not defined here: they come from the one Cityscapes label table in
:mod:`pipeline_lib.domains.classes` (built from ``cityscapesscripts``), and every class-id constant below is
looked up there by name, so the scenes cannot drift from the train ids that the real datasets use. Parts are the
scene-only materials shared by both renderers (windows, lane markings, curbs, glass, wheels, skin, ...): the first
three are computed per pixel from surface coordinates, the others belong to whole drawn shapes.
"""

from __future__ import annotations

import numpy as np

from pipeline_lib.domains.classes import CITYSCAPES_CLASSES, IGNORE_INDEX
from pipeline_lib.domains.classes import CITYSCAPES_PALETTE as _PALETTE_COLOURS

NUM_SCENE_CLASSES = len(CITYSCAPES_CLASSES)
#: Label of pixels that are not scored (the ego vehicle's bonnet); the pipeline-wide ignore index, 255.
IGNORE_LABEL: int = IGNORE_INDEX

#: The official Cityscapes colours of the 19 train ids (for visualising masks): read-only uint8 (19, 3).
CITYSCAPES_PALETTE = np.array(_PALETTE_COLOURS, dtype=np.uint8)
CITYSCAPES_PALETTE.setflags(write=False)

ROAD = CITYSCAPES_CLASSES.index("road")
SIDEWALK = CITYSCAPES_CLASSES.index("sidewalk")
BUILDING = CITYSCAPES_CLASSES.index("building")
WALL = CITYSCAPES_CLASSES.index("wall")
FENCE = CITYSCAPES_CLASSES.index("fence")
POLE = CITYSCAPES_CLASSES.index("pole")
LIGHT = CITYSCAPES_CLASSES.index("traffic light")
SIGN = CITYSCAPES_CLASSES.index("traffic sign")
VEGETATION = CITYSCAPES_CLASSES.index("vegetation")
TERRAIN = CITYSCAPES_CLASSES.index("terrain")
SKY = CITYSCAPES_CLASSES.index("sky")
PERSON = CITYSCAPES_CLASSES.index("person")
RIDER = CITYSCAPES_CLASSES.index("rider")
CAR = CITYSCAPES_CLASSES.index("car")
TRUCK = CITYSCAPES_CLASSES.index("truck")
BUS = CITYSCAPES_CLASSES.index("bus")
TRAIN = CITYSCAPES_CLASSES.index("train")
MOTORCYCLE = CITYSCAPES_CLASSES.index("motorcycle")
BICYCLE = CITYSCAPES_CLASSES.index("bicycle")

# Parts: sub-object materials, shared by both renderers. The first three are computed
# per pixel from surface coordinates; the others belong to whole drawn shapes.
(P_NONE, P_WINDOW, P_MARKING, P_CURB, P_GLASS, P_WHEEL, P_TAIL, P_HEAD, P_LAMP_RED,
 P_LAMP_AMBER, P_LAMP_GREEN, P_SKIN, P_HAIR, P_SHIRT, P_PANTS, P_TRUNK, P_SIGN_RIM,
 P_SIGN_FACE, P_LAMPHEAD, P_BUMPER) = range(20)
NUM_PARTS = 20
