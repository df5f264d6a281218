"""URL routes of the experiments app: the rater's pages, the researcher's dashboard, exports
and (under api/) the REST API."""

from django.urls import include, path

from experiments import (
    export_views,
    rater_views,
    researcher_views,
    study_images_views,
    study_raters_views,
    views,
)

app_name = "experiments"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    # The researcher's dashboard (owner, colleagues with read access, staff).
    path("studies/<str:study>/", researcher_views.study_detail, name="study_detail"),
    path("studies/<str:study>/status", researcher_views.study_status, name="study_status"),
    path("studies/<str:study>/sharing", researcher_views.study_sharing, name="study_sharing"),
    path("studies/<str:study>/raters/", study_raters_views.rater_list, name="study_raters"),
    path(
        "studies/<str:study>/raters/<str:rater>/",
        study_raters_views.rater_detail,
        name="study_rater",
    ),
    path("studies/<str:study>/images/", study_images_views.image_gallery, name="study_images"),
    path(
        "studies/<str:study>/images/<str:image>",
        study_images_views.image_file,
        name="study_image_file",
    ),
    path("studies/<str:study>/export/<str:kind>", export_views.study_export, name="study_export"),
    # The rater's side.
    path("s/<str:study>/", rater_views.rater_landing, name="rater_landing"),
    path("s/<str:study>/start", rater_views.rater_start, name="rater_start"),
    path("s/<str:study>/task", rater_views.rater_task, name="rater_task"),
    path("s/<str:study>/done", rater_views.rater_done, name="rater_done"),
    path("rate/image/<str:trial>", rater_views.rater_image, name="rater_image"),
    path("rate/mask/<str:mask>", rater_views.rater_mask, name="rater_mask"),
    path("api/", include("experiments.api_urls")),
]
