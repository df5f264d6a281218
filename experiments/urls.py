"""URL routes of the experiments app."""

from django.urls import path

from experiments import rater_views, researcher_views, views

app_name = "experiments"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("studies/<str:study>/", researcher_views.study_detail, name="study_detail"),
    path("s/<str:study>/", rater_views.rater_landing, name="rater_landing"),
    path("s/<str:study>/start", rater_views.rater_start, name="rater_start"),
    path("s/<str:study>/task", rater_views.rater_task, name="rater_task"),
    path("s/<str:study>/done", rater_views.rater_done, name="rater_done"),
    path("rate/image/<str:trial>", rater_views.rater_image, name="rater_image"),
    path("rate/mask/<str:mask>", rater_views.rater_mask, name="rater_mask"),
]
