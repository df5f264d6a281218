"""results.tex: the study's results as a booktabs table for a paper, rounded to one decimal
from study_results (the numbers the study page shows)."""

from __future__ import annotations

import math

from django.utils.text import slugify

import hype
from experiments.models import Study
from experiments.services.baselines import study_baselines
from experiments.services.scores import StudyResults, interval_name, study_results

_LATEX_SPECIALS = str.maketrans(
    {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
        "<": r"\textless{}",
        ">": r"\textgreater{}",
        "|": r"\textbar{}",
        "\n": " ",
        "\r": " ",
    }
)


def latex_escape(text: str) -> str:
    """Text that LaTeX prints as written (one pass, so escapes are never escaped again)."""
    return text.translate(_LATEX_SPECIALS)


def _one_decimal(value: float) -> str:
    return f"{value:.1f}"


def _percent(value: float) -> str:
    return f"{100 * value:.1f}" if math.isfinite(value) else "---"


def latex_table(study: Study, *, results: StudyResults | None = None) -> str:
    """The results as a booktabs table for a paper: HYPE_time in ms or HYPE_inf in percent,
    with the bootstrap SD and interval and the number of raters, rounded to one decimal from
    study_results (the numbers the study page shows)."""
    results = results or study_results(study)
    timed = results.unit == "ms"
    level = f"{100 * study.confidence:g}\\%"
    if timed:
        header = [
            "Model",
            r"HYPE$_{\mathrm{time}}$ (ms)",
            "SD (ms)",
            f"{level} CI (ms)",
            "Raters",
        ]
        fmt = _one_decimal
    else:
        header = [
            "Model",
            r"HYPE$_{\infty}$ (\%)",
            r"Fakes error (\%)",
            r"Reals error (\%)",
            r"SD (\%)",
            f"{level} CI (\\%)",
            "Raters",
        ]
        fmt = _percent
    baselines = study_baselines(study)
    if baselines:
        header.append("FID")
    rows = []
    fitted = timed and results.time_score == Study.TimeScore.FIT
    for model in results.models:
        # The study's headline score: the modal threshold's, or the fit's.
        score = model.headline
        numbers = ["---"] * (len(header) - 2 - bool(baselines))
        if score is not None:
            interval = f"{fmt(score.low)}--{fmt(score.high)}"
            if timed:
                numbers = [fmt(score.estimate), fmt(score.sd), interval]
            else:
                inf = model.inf
                fake = _percent(inf.fake_error) if inf else "---"
                real = _percent(inf.real_error) if inf else "---"
                numbers = [fmt(score.estimate), fake, real, fmt(score.sd), interval]
        row = [latex_escape(model.name), *numbers, str(model.n_raters)]
        if baselines:
            baseline = baselines.get(model.name)
            row.append(f"{baseline.fid:.2f}" if baseline else "---")
        rows.append(row)

    name = latex_escape(study.name)
    if fitted:
        what = (
            rf"HYPE$_{{\mathrm{{time}}}}$ of {name}: the mean over raters of each rater's "
            r"psychometric threshold (a logistic fit of all their timed trials, one slope shared "
            r"by every rater, read at the staircase's target accuracy; a censored rater counts "
            r"at the bound); higher is more realistic."
        )
    elif timed:
        what = (
            rf"HYPE$_{{\mathrm{{time}}}}$ of {name}: the mean over raters of each rater's mean "
            r"block threshold (modal exposure); higher is more realistic."
        )
    else:
        what = (
            rf"HYPE$_{{\infty}}$ of {name}: the share of wrong answers pooled over raters, and "
            r"of fakes judged real and reals judged fake; 50\% is indistinguishable."
        )
    caption = (
        f"{what} SD and {level} {interval_name(results.interval_method)} intervals from "
        f"{study.bootstrap_resamples:,} bootstrap resamples of raters."
    )
    if results.n_excluded:
        # The table is the study's result: say whom it leaves out (scores.csv has both).
        n = results.n_excluded
        caption += (
            f" Raters are those who completed and were not excluded ({n} "
            f"{'rater' if n == 1 else 'raters'} excluded after completing "
            f"{'is' if n == 1 else 'are'} not counted)."
        )
    if baselines:
        caption += (
            " FID: Inception-v3 pool3 features of each model's fakes against the study's "
            "real images (lower is closer)."
        )
    columns = "l" + "r" * (len(header) - 1)
    lines = [
        f"% HYPE results of study {study.public_id}, exported by hype {hype.__version__}.",
        r"% Needs \usepackage{booktabs} in the preamble.",
        r"\begin{table}[t]",
        r"  \centering",
        f"  \\begin{{tabular}}{{{columns}}}",
        r"    \toprule",
        "    " + " & ".join(header) + r" \\",
        r"    \midrule",
        *("    " + " & ".join(row) + r" \\" for row in rows),
        r"    \bottomrule",
        r"  \end{tabular}",
        f"  \\caption{{{caption}}}",
        f"  \\label{{tab:hype-{slugify(study.name) or 'study'}}}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"
