"""Input checks shared by the science modules."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def finite_array(values: ArrayLike, *, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"need at least one value in {what}")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} must be finite numbers")
    return array
