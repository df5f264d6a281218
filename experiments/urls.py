"""URL routes of the experiments app."""

from django.urls import path

from experiments import views

app_name = "experiments"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
]
