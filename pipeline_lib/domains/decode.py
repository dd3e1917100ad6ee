"""Image files of any mode to 8-bit RGB as a viewer shows them: the frames of folder and real street domains, the
images of class-per-folder domains.

EXIF orientation is applied (a phone's portrait photo is stored landscape with a rotate tag; its label map, drawn
on what the annotator saw, is upright), 16- and 32-bit grey is scaled to 8 bits (PIL's ``convert("RGB")`` would
clip it at 255: a white frame), float grey in [0, 1] too, and every other mode (L, LA, P, RGBA, CMYK, ...) goes
through PIL's own conversion (alpha dropped, palettes looked up).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

#: what a damaged or odd file raises while it is decoded (callers turn it into one line naming the file)
DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, RuntimeError, Image.DecompressionBombError)
_WIDE_GREY = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def to_rgb(im: Image.Image) -> Image.Image:
    """``im`` (decoded) upright and as 8-bit RGB."""
    im = ImageOps.exif_transpose(im)
    if im.mode in _WIDE_GREY:
        wide = np.asarray(im, dtype=np.int64)
        im = Image.fromarray((np.clip(wide, 0, 65535) // 257).astype(np.uint8), mode="L")
    elif im.mode == "F":
        im = Image.fromarray((np.clip(np.asarray(im), 0.0, 1.0) * 255).round().astype(np.uint8), mode="L")
    return im.convert("RGB")
