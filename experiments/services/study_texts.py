"""What a study's rater pages say about it: the consent (the researcher's text, or a default
that states truthfully what is stored), the instructions, how long it takes, what it pays, and
whom to contact. The landing page, the MTurk preview and the platforms' study forms take their
words and numbers from here."""

from __future__ import annotations

import math

from experiments.models import Study
from experiments.services.payments import cents_as_amount

# How long a rater needs per image, in seconds, for the estimate of a study's duration: an
# untimed image is looked at and answered; a timed one adds its countdown and its feedback.
UNTIMED_TRIAL_S = 3.0
TIMED_TRIAL_EXTRA_S = 1.5

DEFAULT_CONSENT = (
    "I agree to take part in this research study. What is stored: my answers and how long "
    "each took, how each image was displayed on my screen, my browser and screen size, and "
    "when I started and finished, under a random participant id. If I came through Prolific "
    "or MTurk, my worker id is stored too, to pay me; it is never shown in the results. "
    "I can stop at any time by closing the page."
)


def consent_text_shown(study: Study) -> str:
    """The consent a rater agrees to: the study's own text, or the default."""
    return study.consent_text.strip() or DEFAULT_CONSENT


def minutes_estimated(study: Study) -> int:
    """About how many minutes the study takes a rater who completes it."""
    blocks, per_block = study.task_blocks
    seconds = study.qualification_trials * UNTIMED_TRIAL_S
    if study.method == Study.Method.TIME:
        per_trial = 3 * study.countdown_step_ms / 1000 + UNTIMED_TRIAL_S + TIMED_TRIAL_EXTRA_S
    else:
        per_trial = UNTIMED_TRIAL_S
    seconds += blocks * per_block * per_trial
    return max(1, math.ceil(seconds / 60))


def minutes_shown(study: Study) -> int:
    """The study's duration as raters are told it: the researcher's figure, or the estimate."""
    return study.estimated_minutes or minutes_estimated(study)


def pay_shown(study: Study) -> str:
    """The pay in words, e.g. "1.50 USD, plus 0.02 USD for each correct answer"; "" if none."""
    parts = []
    if study.pay_base_cents:
        parts.append(f"{cents_as_amount(study.pay_base_cents)} {study.currency}")
    if study.pay_per_correct_cents:
        bonus = f"{cents_as_amount(study.pay_per_correct_cents)} {study.currency}"
        parts.append(f"{'plus ' if parts else ''}{bonus} for each correct answer")
    return ", ".join(parts)
