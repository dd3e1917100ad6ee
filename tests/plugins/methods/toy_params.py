"""The toy plugin's params.yaml section, ``toy`` (optional on both tracks)."""

from __future__ import annotations

from pydantic import Field

from pipeline_lib.config import _Strict


class ToyParams(_Strict):
    """``scale``: the positive factor on the logits layer's weights and bias."""

    scale: float = Field(2.0, gt=0)


SECTION = "toy"
PARAMS = SEG_PARAMS = ToyParams
DEFAULT = SEG_DEFAULT = ToyParams
