"""A production deployment from environment variables alone: `check --deploy` is clean with the
four a deployment must set, HTTPS behind a proxy is one variable, static files are hashed,
the cache is shared through Redis, and no route serves the stored images."""

import importlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from django.test import Client
from django.urls import clear_url_caches

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "hype.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://hype.example.org",
}


def run_with_only(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`args` in a fresh interpreter whose environment is `env` and nothing else (no PATH, no
    DATABASE_URL from the suite's own run), from the project's folder."""
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def setting(env: dict[str, str], expression: str) -> subprocess.CompletedProcess:
    code = (
        f"import django; django.setup(); from django.conf import settings as s; print({expression})"
    )
    return run_with_only({"DJANGO_SETTINGS_MODULE": "hype.settings", **env}, "-c", code)


def test_it_passes_check_deploy_with_only_debug_off_a_secret_key_hosts_and_trusted_origins():
    result = run_with_only(PRODUCTION, "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    # Nothing silenced either: every check Django has for a deployment ran and passed.
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stderr


def test_with_debug_off_it_is_https_only_by_default():
    result = setting(
        PRODUCTION,
        "s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, "
        "s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
        "s.SESSION_COOKIE_SAMESITE, s.CSRF_COOKIE_SAMESITE, s.SECURE_PROXY_SSL_HEADER",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        *("31536000", "True", "True", "True", "True", "True"),
        *("None", "None", "None"),
    ]


def test_with_debug_on_it_stays_on_plain_http():
    result = setting(
        {}, "s.SECURE_HSTS_SECONDS, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.DEBUG"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "False", "False", "True"]


def test_each_https_setting_is_its_own_variable():
    result = setting(
        {
            **PRODUCTION,
            "SECURE_HSTS_SECONDS": "3600",
            "SECURE_HSTS_PRELOAD": "0",
            "SECURE_SSL_REDIRECT": "0",
            "CSRF_TRUSTED_ORIGINS": "https://a.example.org,https://b.example.org",
            "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
        },
        "s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_PRELOAD, s.SECURE_SSL_REDIRECT, "
        "s.CSRF_TRUSTED_ORIGINS, s.SECURE_PROXY_SSL_HEADER",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "3600 False False ['https://a.example.org', 'https://b.example.org'] "
        "('HTTP_X_FORWARDED_PROTO', 'https')"
    )


@pytest.mark.parametrize(
    "value", ["X-Forwarded-Proto: https", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_PROTO,"]
)
def test_it_refuses_a_proxy_ssl_header_it_cannot_read(value):
    result = setting({**PRODUCTION, "SECURE_PROXY_SSL_HEADER": value}, "s.DEBUG")
    assert result.returncode != 0
    assert "SECURE_PROXY_SSL_HEADER must be a request header as Django names it" in result.stderr
    assert "HTTP_X_FORWARDED_PROTO,https" in result.stderr


def test_it_refuses_hsts_seconds_that_are_not_a_number():
    result = setting({**PRODUCTION, "SECURE_HSTS_SECONDS": "a year"}, "s.DEBUG")
    assert result.returncode != 0
    assert "SECURE_HSTS_SECONDS must be a whole number, got 'a year'" in result.stderr


def test_static_files_are_hashed_and_compressed_only_with_debug_off():
    expression = "s.STORAGES['staticfiles']['BACKEND'], s.WHITENOISE_USE_FINDERS"
    production = setting(PRODUCTION, expression)
    development = setting({}, expression)
    assert production.stdout.split() == ["hype.static_storage.HashedStaticStorage", "False"]
    assert development.stdout.split() == [
        "django.contrib.staticfiles.storage.StaticFilesStorage",
        "True",
    ]


def test_collectstatic_gives_the_rater_modules_hashed_names_that_import_each_other(tmp_path):
    result = run_with_only(
        {**PRODUCTION, "STATIC_ROOT": str(tmp_path)}, "manage.py", "collectstatic", "--noinput"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (rater,) = [p for p in (tmp_path / "js").glob("rater.*.js") if p.name != "rater.js"]
    assert (tmp_path / "js" / f"{rater.name}.gz").is_file()
    imports = [line for line in rater.read_text().splitlines() if 'from "./' in line]
    assert imports and all(".js" in line for line in imports)
    for line in imports:
        name = line.split('from "./', 1)[1].split('"', 1)[0]
        assert name.count(".") == 2 and (tmp_path / "js" / name).is_file(), line


def test_the_cache_is_redis_with_redis_url_and_per_process_without():
    expression = "s.CACHES['default']['BACKEND'], s.CACHES['default'].get('LOCATION')"
    with_redis = setting({"REDIS_URL": "redis://cache:6379/2"}, expression)
    without = setting({}, expression)
    assert with_redis.stdout.split() == [
        "django.core.cache.backends.redis.RedisCache",
        "redis://cache:6379/2",
    ]
    assert without.stdout.split()[0] == "django.core.cache.backends.locmem.LocMemCache"


@pytest.fixture
def media_with_debug_on(settings, tmp_path):
    """MEDIA_ROOT in tmp_path, and hype.urls imported again while DEBUG is on, as `runserver`
    builds it."""
    import hype.urls

    settings.DEBUG = True
    settings.MEDIA_ROOT = tmp_path
    importlib.reload(hype.urls)
    clear_url_caches()
    yield tmp_path
    settings.DEBUG = False
    importlib.reload(hype.urls)
    clear_url_caches()


def test_with_debug_on_no_url_serves_a_stored_image(media_with_debug_on):
    stored = media_with_debug_on / "images" / "0a1b2c3d4e5f.png"
    stored.parent.mkdir()
    stored.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(32))
    response = Client().get(f"/media/images/{stored.name}")
    assert response.status_code == 404
    assert stored.read_bytes() not in response.content


@pytest.mark.django_db
def test_the_health_check_answers_plain_http_while_every_page_is_sent_to_https(settings):
    settings.SECURE_SSL_REDIRECT = True
    client = Client()
    assert client.get("/healthz").status_code == 200
    login = client.get("/accounts/login/")
    assert login.status_code == 301
    assert login["Location"] == "https://testserver/accounts/login/"


@pytest.mark.django_db
def test_behind_the_proxy_a_request_it_marks_https_is_served_as_https(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    client = Client()
    marked = client.get("/accounts/login/", headers={"X-Forwarded-Proto": "https"})
    assert marked.status_code == 200
    assert marked["Strict-Transport-Security"].startswith("max-age=3600")
    assert client.get("/accounts/login/").status_code == 301


def compose() -> dict:
    import yaml  # PyYAML comes with drf-spectacular

    return yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())


def caddy_upstreams() -> list[str]:
    text = (ROOT / "deploy" / "Caddyfile").read_text()
    (line,) = [line for line in text.splitlines() if line.strip().startswith("reverse_proxy ")]
    return line.split()[1:-1]  # reverse_proxy <upstreams...> {


def test_the_compose_file_runs_the_database_redis_a_one_shot_setup_and_workers():
    services = compose()["services"]
    assert services["db"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    setup = services["setup"]
    assert setup["restart"] == "no"
    assert "migrate --noinput" in setup["command"][-1]
    assert "collectstatic --noinput" in setup["command"][-1]
    workers = {name: s for name, s in services.items() if name.startswith("web")}
    assert len(workers) >= 2
    for name, worker in workers.items():
        assert worker["depends_on"]["setup"]["condition"] == "service_completed_successfully"
        assert worker["depends_on"]["db"]["condition"] == "service_healthy"
        assert "ports" not in worker, f"{name}: only the proxy may reach a worker"
        env = worker["environment"]
        assert env["DEBUG"] == "0" and env["REDIS_URL"].startswith("redis://redis:")
        assert env["SECURE_PROXY_SSL_HEADER"] == "HTTP_X_FORWARDED_PROTO,https"
        assert env["CSRF_TRUSTED_ORIGINS"].startswith("https://")
        assert {"media:/data/media", "static:/data/static"} <= set(worker["volumes"])
    build = setup["build"]
    assert (ROOT / "deploy" / build["context"] / build["dockerfile"]).is_file()


def test_the_proxy_sends_round_robin_to_every_worker_and_compresses_nothing():
    services = compose()["services"]
    workers = sorted(name for name in services if name.startswith("web"))
    assert sorted(caddy_upstreams()) == [f"{name}:8000" for name in workers]
    assert sorted(services["proxy"]["depends_on"]) == workers
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in services["proxy"]["volumes"]
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    directives = [line.split()[0] for line in caddyfile.splitlines() if line.strip()]
    assert "lb_policy" in directives and "round_robin" in caddyfile
    # Study images are served at one byte length; a compressed response would undo that.
    assert "encode" not in directives
    assert "health_uri" in directives and "/healthz" in caddyfile


def test_the_deployment_page_documents_every_variable_the_settings_read():
    settings_source = (ROOT / "hype" / "settings.py").read_text()
    read = set(
        re.findall(
            r'(?:os\.environ\.get|env_flag|env_int|env_list)\(\s*"([A-Z_]+)"', settings_source
        )
    )
    read |= {"DATABASE_URL"}  # read by dj_database_url.config()
    page = (ROOT / "docs" / "deployment.md").read_text()
    table = page.split("## Every environment variable", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    assert read, "no variables found: the pattern is out of date"
    assert sorted(read - documented) == []
    for name in compose()["services"]["web1"]["environment"]:
        assert name in documented, name


def test_the_workers_reach_postgresql_through_pgbouncers_session_pool():
    services = compose()["services"]
    bouncer = services["pgbouncer"]
    build = bouncer["build"]
    assert (ROOT / "deploy" / build["context"] / build["dockerfile"]).is_file()
    for name in (n for n in services if n.startswith("web")):
        env = services[name]["environment"]
        assert "@pgbouncer:6432/" in env["DATABASE_URL"], name
        assert env["DATABASE_CONN_MAX_AGE"] == "0", "under ASGI a connection per request"
    assert int(bouncer["environment"]["PGBOUNCER_POOL_SIZE"]) < 100  # PostgreSQL's default max
    # Each worker's rater thread keeps one of the pool's connections: some must be left over.
    workers = [n for n in services if n.startswith("web")]
    threads = sum(
        int(services[n]["environment"].get("HYPE_RATER_DATABASE_THREADS", "1")) for n in workers
    )
    assert int(bouncer["environment"]["PGBOUNCER_POOL_SIZE"]) >= threads + 2


def test_the_containers_entrypoint_writes_a_configuration_pgbouncer_starts_with():
    script = (ROOT / "deploy" / "pgbouncer-entrypoint.sh").read_text()
    # The same script, with its files and port in a folder of the test's own, which the
    # postgres user can reach (pytest's own temporary folders are private to root).
    folder = Path(tempfile.mkdtemp(prefix="hype-pgbouncer-entrypoint-"))
    folder.chmod(0o777)
    port = _free_port()
    script = script.replace("/tmp/", f"{folder}/").replace("6432", str(port))
    script = script.replace("exec pgbouncer", "exec /usr/sbin/pgbouncer")
    (folder / "entrypoint.sh").write_text(script)
    env = {**os.environ, "POSTGRES_PASSWORD": "secret", "PGBOUNCER_POOL_SIZE": "7"}
    command = ["sh", str(folder / "entrypoint.sh")]
    if os.geteuid() == 0:  # pgbouncer refuses root; the container runs it as postgres
        command = ["runuser", "-u", "postgres", "--", *command]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, process.stderr.read().decode()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "pgbouncer did not listen"
                time.sleep(0.05)
        config = (folder / "pgbouncer.ini").read_text()
        assert "pool_mode = session" in config and "default_pool_size = 7" in config
        assert "password=secret" in config
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
