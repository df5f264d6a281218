"""SCAFFOLD (being written): per-image pages of a study."""

from django.http import Http404


def image_gallery(request, study):
    raise Http404


def image_file(request, study, image):
    raise Http404
