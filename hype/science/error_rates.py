"""HYPE_inf scores: the share of wrong answers, pooled over trials, with the fake error
(fakes called real) and the real error (reals called fake)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class InfScore:
    """HYPE_inf error rates pooled over trials; fake/real errors are NaN without such images."""

    error: float
    fake_error: float
    real_error: float
    n_trials: int
    n_fake: int
    n_real: int


def inf_score(*, is_real: ArrayLike, correct: ArrayLike) -> InfScore:
    """Pooled HYPE_inf error: wrong answers / trials, plus fakes called real and reals called
    fake. With balanced blocks the error is the mean of the fake and real errors.
    """
    real = np.asarray(is_real, dtype=bool)
    right = np.asarray(correct, dtype=bool)
    if real.ndim != 1 or real.shape != right.shape:
        raise ValueError(
            f"is_real and correct must be 1-D and the same length, got shapes {real.shape} "
            f"and {right.shape}"
        )
    if real.size == 0:
        raise ValueError("HYPE_inf needs at least one answered trial")
    wrong = ~right
    n_real = int(real.sum())
    n_fake = real.size - n_real
    return InfScore(
        error=float(wrong.mean()),
        fake_error=float(wrong[~real].sum() / n_fake) if n_fake else math.nan,
        real_error=float(wrong[real].sum() / n_real) if n_real else math.nan,
        n_trials=int(real.size),
        n_fake=n_fake,
        n_real=n_real,
    )
