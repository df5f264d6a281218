"""SCAFFOLD (being written): per-rater pages of a study."""

from django.http import Http404


def rater_list(request, study):
    raise Http404


def rater_detail(request, study, rater):
    raise Http404
