"""HYPE_time scores: a block's threshold (its modal exposure), a rater's score (the mean of
their block thresholds) and a model's score (the mean of its rater scores), all in ms."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from hype.science.checks import finite_array

TIE_RULES = ("mean", "lowest", "highest")


def block_threshold(exposures: Sequence[int], *, burn_in: int = 0, tie_rule: str = "mean") -> float:
    """The modal exposure of a block after dropping its first burn_in trials.

    When several exposures are shown equally often, tie_rule picks their mean (the
    default), the lowest or the highest.
    """
    if tie_rule not in TIE_RULES:
        raise ValueError(f"tie_rule must be one of {TIE_RULES}, got {tie_rule!r}")
    if isinstance(burn_in, bool) or not isinstance(burn_in, int) or burn_in < 0:
        raise ValueError(f"burn_in must be a non-negative integer, got {burn_in!r}")
    if len(exposures) == 0:
        raise ValueError("a block needs at least one trial")
    kept = np.asarray(exposures)[burn_in:]
    if kept.size == 0:
        raise ValueError(f"burn_in={burn_in} drops all {len(exposures)} trials of the block")
    values, counts = np.unique(kept, return_counts=True)
    modes = values[counts == counts.max()]
    if tie_rule == "lowest":
        return float(modes.min())
    if tie_rule == "highest":
        return float(modes.max())
    return float(modes.mean())


def rater_time_score(
    blocks: Sequence[Sequence[int]], *, burn_in: int = 0, tie_rule: str = "mean"
) -> float:
    """A rater's HYPE_time score: the mean of their block thresholds, in ms."""
    if len(blocks) == 0:
        raise ValueError("a rater needs at least one block")
    return float(np.mean([block_threshold(b, burn_in=burn_in, tie_rule=tie_rule) for b in blocks]))


def model_time_score(rater_scores: ArrayLike) -> float:
    """A model's HYPE_time score: the mean of its rater scores, in ms."""
    return float(np.mean(finite_array(rater_scores, what="rater scores")))
