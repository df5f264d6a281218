"""App configuration of the experiments app."""

from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "experiments"
    verbose_name = "HYPE experiments"
