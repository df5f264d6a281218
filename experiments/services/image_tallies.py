"""How often each image of a study fooled raters: for a fake, how often it was called real;
for a real image, how often it was called fake; and the most and least convincing images."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q

from experiments.models import Answer, Block, Image, RaterSession, Study

# Answers counted: the task blocks of raters who completed the study or are in it now. The
# qualification (fakes from every model, before a rater is assigned one) and raters who
# abandoned or were excluded are left out.
COUNTED_STATUSES = [RaterSession.Status.COMPLETED, RaterSession.Status.IN_TASK]


@dataclass(frozen=True)
class ImageTally:
    image: Image
    answered: int
    # Fakes: times called real ("fooled"). Reals: times called fake.
    wrong: int

    @property
    def rate(self) -> float | None:
        return self.wrong / self.answered if self.answered else None

    @property
    def percent(self) -> str:
        return "—" if self.rate is None else f"{100 * self.rate:.0f}%"


def image_tallies(study: Study) -> dict[int, tuple[int, int]]:
    """image id -> (answers, wrong answers), from counted task answers, in one query."""
    rows = (
        Answer.objects.filter(
            trial__session__study=study,
            trial__session__status__in=COUNTED_STATUSES,
            trial__block__kind=Block.Kind.TASK,
        )
        .values("trial__image_id")
        .order_by()
        .annotate(answered=Count("id"), wrong=Count("id", filter=Q(correct=False)))
    )
    return {r["trial__image_id"]: (r["answered"], r["wrong"]) for r in rows}


def gallery_pick(tallies: list[ImageTally], *, min_answers: int, size: int):
    """The most and least convincing of the images answered at least min_answers times;
    ties go to the image with more answers (the better-measured rate)."""
    ranked = [t for t in tallies if t.answered >= min_answers]
    most = sorted(ranked, key=lambda t: (-t.rate, -t.answered, t.image.id))[:size]
    shown = {t.image.id for t in most}
    least = [
        t
        for t in sorted(ranked, key=lambda t: (t.rate, -t.answered, t.image.id))
        if t.image.id not in shown
    ][:size]
    return ranked, most, least
