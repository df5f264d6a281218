"""Who may see and who may change a study. Every researcher page, export, API endpoint and
the progress websocket asks here, so the three personas (owner, colleague with read access,
outsider) are enforced in one place.

An outsider gets "not found", never "forbidden": they do not learn that a study exists.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from experiments.models import Study


def studies_visible_to(user) -> QuerySet[Study]:
    """Staff see every study; a researcher sees their own and those shared with them."""
    if not getattr(user, "is_authenticated", False):
        return Study.objects.none()
    if user.is_staff:
        return Study.objects.all()
    return Study.objects.filter(Q(owner=user) | Q(viewers=user)).distinct()


def studies_editable_by(user) -> QuerySet[Study]:
    """Staff change every study; a researcher changes only their own (colleagues read)."""
    if not getattr(user, "is_authenticated", False):
        return Study.objects.none()
    if user.is_staff:
        return Study.objects.all()
    return Study.objects.filter(owner=user)


def study_can_edit(user, study: Study) -> bool:
    return studies_editable_by(user).filter(pk=study.pk).exists()


def study_for_viewer(user, public_id: str) -> Study:
    """The study if the user may see it; Http404 otherwise (also for colleagues' typos)."""
    study = studies_visible_to(user).filter(public_id=public_id).first()
    if study is None:
        raise Http404("No such study.")
    return study


def study_for_editor(user, public_id: str) -> Study:
    """The study if the user may change it. A colleague with read access gets
    PermissionDenied (403: they know the study exists); an outsider gets Http404."""
    study = study_for_viewer(user, public_id)
    if not study_can_edit(user, study):
        raise PermissionDenied("This study is shared with you read-only.")
    return study


def study_owner_or_staff(user, study: Study) -> bool:
    """The study's owner, or staff: who may see what the study pays whom (its raters' worker
    ids are personal data, kept from colleagues with read access)."""
    if not getattr(user, "is_authenticated", False):
        return False
    return user.is_staff or study.owner_id == user.pk


def study_for_owner(user, public_id: str) -> Study:
    """The study if the user owns it or is staff. A colleague with read access gets
    PermissionDenied (403); an outsider gets Http404."""
    study = study_for_viewer(user, public_id)
    if not study_owner_or_staff(user, study):
        raise PermissionDenied("Only the study's owner sees its payments.")
    return study
