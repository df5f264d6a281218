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
    wrong = ~right
    return inf_score_from_counts(
        n_fake=int((~real).sum()),
        wrong_fake=int(wrong[~real].sum()),
        n_real=int(real.sum()),
        wrong_real=int(wrong[real].sum()),
    )


def inf_score_from_counts(
    *, n_fake: int, wrong_fake: int, n_real: int, wrong_real: int
) -> InfScore:
    """inf_score from counts: fakes shown and called real, reals shown and called fake (so
    that raters' answers can be pooled by adding their counts)."""
    counts = (n_fake, wrong_fake, n_real, wrong_real)
    if any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in counts):
        raise ValueError(f"counts must be non-negative integers, got {counts}")
    if wrong_fake > n_fake or wrong_real > n_real:
        raise ValueError("more wrong answers than answers")
    n = n_fake + n_real
    if n == 0:
        raise ValueError("HYPE_inf needs at least one answered trial")
    return InfScore(
        error=(wrong_fake + wrong_real) / n,
        fake_error=wrong_fake / n_fake if n_fake else math.nan,
        real_error=wrong_real / n_real if n_real else math.nan,
        n_trials=n,
        n_fake=n_fake,
        n_real=n_real,
    )
