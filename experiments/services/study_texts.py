"""What a study's rater pages say about it: the consent (the researcher's text, or a default
that states truthfully what is stored), the instructions, how long it takes, what it pays, and
whom to contact. The landing page, the MTurk preview and the platforms' study forms take their
words and numbers from here."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from experiments.models import Study
from experiments.services.payments import cents_as_amount
from experiments.services.problems import InputProblems

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


# --- Changing them (the study's texts page) ------------------------------------------------

# What the texts page edits, in its order. The pay is given as decimal amounts of the currency
# ("1.50") and stored in cents; the texts may change at any time (they are not protocol).
TEXT_FIELDS = (
    "instructions",
    "consent_text",
    "estimated_minutes",
    "contact",
    "currency",
    "pay_base",
    "pay_per_correct",
    "code_completed",
    "code_screened_out",
    "code_no_consent",
    "code_full",
    "code_device",
)
CODE_FIELDS = (
    "code_completed",
    "code_screened_out",
    "code_no_consent",
    "code_full",
    "code_device",
)
PAY_FIELDS = {"pay_base": "pay_base_cents", "pay_per_correct": "pay_per_correct_cents"}
MAX_TEXT_CHARS = 20_000
MAX_MINUTES = 24 * 60
# A larger amount per rater is a typo (and the column holds at most 2**31 - 1 cents).
MAX_PAY_CENTS = 1_000_000
_AMOUNT = re.compile(r"\d+(\.\d+)?")  # plain decimals: no sign, exponent or separators
_CODE = re.compile(r"[A-Za-z0-9]{1,32}")
_CURRENCY = re.compile(r"[A-Z]{3}")


def amount_cents(text: str | Decimal | int) -> int:
    """A decimal amount as whole cents, exactly: "0.02" -> 2, "1.5" -> 150, "" -> 0. Raises
    ValueError, in words, for anything else: a negative amount, a fraction of a cent ("1.505"),
    more than MAX_PAY_CENTS."""
    raw = str(text).strip()
    if not raw:
        return 0
    if raw.startswith("-"):
        raise ValueError(f"{raw} is negative; give 0 or more")
    if "," in raw and _AMOUNT.fullmatch(raw.replace(",", ".")):
        raise ValueError(f"{raw}: write the decimals after a point, e.g. 1.50")
    if not _AMOUNT.fullmatch(raw):
        raise ValueError(f"{raw!r} is not an amount; write it like 1.50 or 0.02")
    cents = Decimal(raw) * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"{raw} has more than two decimals; give whole cents, e.g. 1.50")
    if cents > MAX_PAY_CENTS:
        raise ValueError(f"{raw} is more than {cents_as_amount(MAX_PAY_CENTS)} per rater")
    return int(cents)


def study_texts_values(*, study: Study) -> dict[str, str]:
    """The study's TEXT_FIELDS as the texts page's form shows them (the pay as amounts)."""
    values = {name: getattr(study, name) for name in TEXT_FIELDS if name not in PAY_FIELDS}
    values["estimated_minutes"] = study.estimated_minutes or ""
    for name, column in PAY_FIELDS.items():
        values[name] = cents_as_amount(getattr(study, column))
    return {name: str(values[name]) for name in TEXT_FIELDS}


def _text(name: str, value: Any, limit: int, problems: list[str]) -> str | None:
    text = str(value if value is not None else "").strip()
    if len(text) > limit:
        problems.append(f"{name}: {len(text):,} characters, more than {limit:,}")
        return None
    return text


def _minutes(value: Any, problems: list[str]) -> int | None:
    raw = str(value if value is not None else "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_MINUTES:
        problems.append(
            f"estimated_minutes: {raw!r} must be a whole number of minutes from 1 to "
            f"{MAX_MINUTES}, or empty for the estimate"
        )
        return None
    return int(raw)


def study_texts_update(*, study: Study, **fields: Any) -> Study:
    """Change what the study tells and pays raters: any of TEXT_FIELDS (those left out keep
    their value). Every value is checked first; on any problem this raises InputProblems, one
    line per problem, and changes nothing.

    Texts are stripped of surrounding spaces; an empty consent_text means DEFAULT_CONSENT, an
    empty estimated_minutes the estimate. pay_base and pay_per_correct are amounts ("1.50").
    currency: three letters (ISO 4217), upper-cased. The codes: 1 to 32 letters or
    digits, all different, since the outcome a rater reports is told by its code."""
    problems: list[str] = []
    unknown = sorted(set(fields) - set(TEXT_FIELDS))
    if unknown:
        problems.append(f"unknown field(s): {', '.join(unknown)} (known: {', '.join(TEXT_FIELDS)})")
    changes: dict[str, Any] = {}
    limits = {
        "instructions": MAX_TEXT_CHARS,
        "consent_text": MAX_TEXT_CHARS,
        "contact": Study._meta.get_field("contact").max_length,
    }
    for name, limit in limits.items():
        if name in fields and (text := _text(name, fields[name], limit, problems)) is not None:
            changes[name] = text
    if "estimated_minutes" in fields:
        before = len(problems)
        minutes = _minutes(fields["estimated_minutes"], problems)
        if len(problems) == before:
            changes["estimated_minutes"] = minutes
    if "currency" in fields:
        currency = str(fields["currency"] or "").strip().upper()
        if _CURRENCY.fullmatch(currency):
            changes["currency"] = currency
        else:
            problems.append(
                f"currency: {currency!r} must be a three-letter ISO 4217 code, e.g. USD, GBP, EUR"
            )
    for name, column in PAY_FIELDS.items():
        if name in fields:
            try:
                changes[column] = amount_cents(fields[name])
            except ValueError as error:
                problems.append(f"{name}: {error}")
    codes = {name: getattr(study, name) for name in CODE_FIELDS}
    for name in CODE_FIELDS:
        if name not in fields:
            continue
        code = str(fields[name] or "").strip()
        if not code:
            problems.append(f"{name}: a completion code is needed for this outcome")
        elif not _CODE.fullmatch(code):
            problems.append(f"{name}: {code!r} must be 1 to 32 letters or digits (A-Z, a-z, 0-9)")
        else:
            changes[name] = codes[name] = code
    seen: dict[str, str] = {}
    for name in CODE_FIELDS:
        # Compared without case: two codes told apart by case alone are easily mixed up.
        key = codes[name].upper()
        if key in seen and (name in changes or seen[key] in changes):
            problems.append(
                f"{name}: the same code as {seen[key]} ({codes[name]}); each outcome needs a "
                "code of its own"
            )
        seen.setdefault(key, name)
    if problems:
        raise InputProblems(problems)
    for name, value in changes.items():
        setattr(study, name, value)
    if changes:
        study.save(update_fields=[*changes, "updated_at"])
    return study
