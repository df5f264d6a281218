"""SCAFFOLD (being written): a study's exports."""

from django.http import Http404


def study_export(request, study, kind):
    raise Http404
