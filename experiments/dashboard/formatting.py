"""How numbers read on the researcher's pages and in the terminal: scores in ms or percent,
p values, and the test of whether the models differ in words (one sentence for the study page
and `manage.py hype_scores` alike)."""

from __future__ import annotations

from collections.abc import Mapping

from experiments.services.scores import StudyResults


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def milliseconds(value: float) -> str:
    return f"{value:.1f} ms"


def score_formatter(unit: str):
    """HYPE_time scores read in ms, HYPE_inf error rates in percent."""
    return percent if unit == "error" else milliseconds


def p_value(p: float) -> str:
    """A p value as the verdict writes it ("p = 0.003", "p < 0.001"), never rounded to 0.05."""
    if p < 0.001:
        return "p < 0.001"
    if p < 0.01:
        return f"p = {p:.3f}"
    shown = f"{p:.2g}"
    return f"p = {p:.3g}" if shown == "0.05" else f"p = {shown}"


def confidence_label(confidence: float) -> str:
    return f"{100 * confidence:g}%"


def verdict(results: StudyResults) -> tuple[str, list[str]]:
    """The test of whether the models differ, in words: a lead sentence and, for three or more
    models, one sentence per pair ("A is more realistic than B, p = 0.003."). For HYPE_inf a
    higher error is more realistic: raters mistook the model's images more often."""
    comparison = results.comparison
    if comparison is None:
        return "Not enough completed raters yet to compare the models (two per model needed).", []

    def pair_sentence(pair) -> str:
        if pair.p_value >= 0.05:
            return f"No evidence that {pair.a} and {pair.b} differ, {p_value(pair.p_value)}."
        first, second = (pair.a, pair.b) if pair.difference > 0 else (pair.b, pair.a)
        return f"{first} is more realistic than {second}, {p_value(pair.p_value)}."

    if comparison.test == "t-test":
        (pair,) = comparison.pairs
        if pair.p_value >= 0.05:
            return (
                f"No evidence that the models differ, {p_value(pair.p_value)} (Welch's t-test).",
                [],
            )
        return pair_sentence(pair)[:-1] + " (Welch's t-test).", []
    omnibus = f"one-way ANOVA, {p_value(comparison.p_value)}"
    if comparison.p_value >= 0.05:
        return f"No evidence that the models differ ({omnibus}).", []
    # Significant pairs first, the strongest evidence leading.
    pairs = sorted(comparison.pairs, key=lambda pair: pair.p_value)
    return (
        f"The models differ ({omnibus}). Pair by pair (Tukey HSD):",
        [pair_sentence(pair) for pair in pairs],
    )


def score_lines(results: StudyResults, *, given: Mapping[str, str] | None = None) -> list[str]:
    """One line per model for the terminal: its HYPE score and interval, its raters, and
    (for a simulation) what its simulated raters were given."""
    given = given or {}
    lines = []
    for model in results.models:
        score = model.headline
        if score is None:
            text = "no completed raters yet"
        else:
            scale = 100 if results.unit == "error" else 1
            interval = (
                f"({confidence_label(score.confidence)} CI "
                f"{scale * score.low:.1f}-{scale * score.high:.1f})"
            )
            if results.unit == "ms":
                what = "HYPE_time (fit)" if model.headline_fit else "HYPE_time"
                text = f"{what} {milliseconds(score.estimate)} {interval}"
            else:
                text = f"HYPE_inf {percent(score.estimate)} error {interval}"
        note = f"; simulated with {given[model.name]}" if model.name in given else ""
        lines.append(f"  {model.name}: {text}, {model.n_raters} raters{note}")
    return lines
