"""URL routes of the experiments app: the rater's pages and images, the researcher's dashboard
and exports, the health check and (under api/) the REST API."""

from django.urls import include, path

from experiments import health
from experiments.dashboard import exports, images, raters, studies
from experiments.rating import pages

app_name = "experiments"

urlpatterns = [
    path("", studies.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    # The researcher's dashboard (owner, colleagues with read access, staff).
    path("studies/<str:study>/", studies.study_detail, name="study_detail"),
    path("studies/<str:study>/status", studies.study_status, name="study_status"),
    path("studies/<str:study>/sharing", studies.study_sharing, name="study_sharing"),
    path("studies/<str:study>/raters/", raters.rater_list, name="study_raters"),
    path("studies/<str:study>/raters/<str:rater>/", raters.rater_detail, name="study_rater"),
    path("studies/<str:study>/images/", images.image_gallery, name="study_images"),
    path("studies/<str:study>/images/<str:image>", images.image_file, name="study_image_file"),
    path("studies/<str:study>/export/<str:kind>", exports.study_export, name="study_export"),
    # The rater's side.
    path("s/<str:study>/", pages.rater_landing, name="rater_landing"),
    path("s/<str:study>/start", pages.rater_start, name="rater_start"),
    path("s/<str:study>/task", pages.rater_task, name="rater_task"),
    path("s/<str:study>/done", pages.rater_done, name="rater_done"),
    path("rate/image/<str:trial>", pages.rater_image, name="rater_image"),
    path("rate/mask/<str:mask>", pages.rater_mask, name="rater_mask"),
    path("api/", include("experiments.api.urls")),
]
