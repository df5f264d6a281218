"""The one settings file reads the environment and refuses unsafe production settings."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def settings_in_fresh_interpreter(
    env: dict[str, str], expression: str
) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY"}
    }
    clean.update(env, DJANGO_SETTINGS_MODULE="hype.settings")
    code = (
        f"import django; django.setup(); from django.conf import settings as s; print({expression})"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off():
    result = settings_in_fresh_interpreter({"DEBUG": "0"}, "s.DEBUG")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_it_starts_with_debug_off_when_a_secret_key_is_given():
    result = settings_in_fresh_interpreter({"DEBUG": "0", "SECRET_KEY": "x" * 50}, "s.DEBUG")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_it_defaults_to_sqlite_and_the_in_memory_channel_layer():
    result = settings_in_fresh_interpreter(
        {}, "s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND']"
    )
    assert result.returncode == 0, result.stderr
    assert "sqlite3" in result.stdout and "InMemoryChannelLayer" in result.stdout


def test_database_url_and_redis_url_switch_to_postgresql_and_channels_redis():
    result = settings_in_fresh_interpreter(
        {"DATABASE_URL": "postgres://u@db.example:5432/hype", "REDIS_URL": "redis://cache:6379/1"},
        "s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME'], "
        "s.CHANNEL_LAYERS['default']['BACKEND'], s.CHANNEL_LAYERS['default']['CONFIG']",
    )
    assert result.returncode == 0, result.stderr
    assert "postgresql hype " in result.stdout
    assert "RedisChannelLayer" in result.stdout and "redis://cache:6379/1" in result.stdout


def test_it_rejects_a_debug_value_that_is_not_a_boolean():
    result = settings_in_fresh_interpreter({"DEBUG": "maybe"}, "s.DEBUG")
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


@pytest.mark.skipif(
    not os.environ.get("HYPE_REQUIRE_SERVICES"), reason="CI sets HYPE_REQUIRE_SERVICES"
)
def test_ci_really_runs_against_postgresql_and_redis():
    from django.conf import settings
    from django.db import connection

    assert connection.vendor == "postgresql"
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
