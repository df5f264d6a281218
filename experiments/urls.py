"""URL routes of the experiments app: the rater's pages and images, the researcher's dashboard
and exports, the health check and (under api/) the REST API."""

from django.urls import include, path

from experiments import health
from experiments.dashboard import (
    exports,
    groups,
    images,
    new_study,
    payments,
    raters,
    studies,
    study_texts,
)
from experiments.rating import pages

app_name = "experiments"

urlpatterns = [
    path("", studies.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    # A new study and its import (any researcher; an import's pages: its owner and staff),
    # before studies/<str:study>/ so that "new" and "imports" are never read as a study.
    path("studies/new/", new_study.study_new, name="study_new"),
    path("groups/", groups.group_list, name="groups"),
    path("studies/imports/<str:job>/", new_study.study_import, name="study_import"),
    path(
        "studies/imports/<str:job>/progress",
        new_study.study_import_progress_json,
        name="study_import_progress",
    ),
    # The researcher's dashboard (owner, colleagues with read access, staff).
    path("studies/<str:study>/", studies.study_detail, name="study_detail"),
    path("studies/<str:study>/status", studies.study_status, name="study_status"),
    path("studies/<str:study>/sharing", studies.study_sharing, name="study_sharing"),
    path("studies/<str:study>/group", groups.study_group, name="study_group"),
    path("studies/<str:study>/texts", study_texts.study_texts, name="study_texts"),
    path("studies/<str:study>/raters/", raters.rater_list, name="study_raters"),
    path("studies/<str:study>/raters/<str:rater>/", raters.rater_detail, name="study_rater"),
    # The study's exclusion rules, and excluding one rater (owner and staff).
    path("studies/<str:study>/raters/rules", raters.rater_rules, name="study_exclusion_rules"),
    path(
        "studies/<str:study>/raters/<str:rater>/exclusion",
        raters.rater_exclusion,
        name="study_rater_exclusion",
    ),
    path("studies/<str:study>/images/", images.image_gallery, name="study_images"),
    path("studies/<str:study>/images/<str:image>", images.image_file, name="study_image_file"),
    path("studies/<str:study>/export/<str:kind>", exports.study_export, name="study_export"),
    # The study's payments: owner and staff only (worker ids).
    path("studies/<str:study>/payments/", payments.study_payments, name="study_payments"),
    path(
        "studies/<str:study>/payments/<str:kind>",
        payments.study_payments_download,
        name="study_payments_download",
    ),
    # The rater's side.
    path("s/<str:study>/", pages.rater_landing, name="rater_landing"),
    path("s/<str:study>/device", pages.rater_device, name="rater_device"),
    path("s/<str:study>/start", pages.rater_start, name="rater_start"),
    path("s/<str:study>/task", pages.rater_task, name="rater_task"),
    path("s/<str:study>/done", pages.rater_done, name="rater_done"),
    path("s/<str:study>/example", pages.rater_example, name="rater_example"),
    path("rate/image/<str:trial>", pages.rater_image, name="rater_image"),
    path("rate/mask/<str:mask>", pages.rater_mask, name="rater_mask"),
    path("api/", include("experiments.api.urls")),
]
