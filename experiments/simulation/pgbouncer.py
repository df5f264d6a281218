"""PgBouncer in front of a PostgreSQL database, on a free local port, for load runs and their
tests: the pool that bounds the workers' connections (docs/deployment.md, "Database
connections"). The same settings as the deployment's, in a temporary folder."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

START_TIMEOUT_S = 10


class PgBouncerError(RuntimeError):
    """pgbouncer is not installed, or did not start; the message says which."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pgbouncer_config(
    *, host: str, port: int, listen_port: int, pool_size: int, user: str, folder: Path
) -> str:
    """The pgbouncer.ini of a session pool: a Django connection (one per request, or per
    message of the rater socket, with CONN_MAX_AGE 0) takes a server connection for its life
    and gives it back warm, so connecting costs pgbouncer's handshake instead of a new
    PostgreSQL backend; at most pool_size server connections per database and user, and
    clients beyond them wait their turn instead of being refused."""
    return "\n".join(
        [
            "[databases]",
            f"* = host={host} port={port}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {listen_port}",
            "unix_socket_dir =",
            "auth_type = trust",
            f"auth_file = {folder / 'userlist.txt'}",
            f"admin_users = {user}",
            "pool_mode = session",
            f"default_pool_size = {pool_size}",
            "max_client_conn = 10000",
            "max_db_connections = 0",
            # psycopg2 sends these at connect: pgbouncer must not refuse them.
            "ignore_startup_parameters = extra_float_digits,options",
            # Errors only: a line per connection would be most of its work under load.
            "log_connections = 0",
            "log_disconnections = 0",
            "",
        ]
    )


@contextmanager
def pgbouncer_running(*, database_url: str, pool_size: int) -> Iterator[str]:
    """PgBouncer in front of database_url's server, with pool_size server connections per
    database; yields database_url with pgbouncer's port instead, and stops it on exit. Its
    files live in a temporary folder of their own, removed at the end."""
    executable = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(executable).exists():
        raise PgBouncerError("pgbouncer is not installed: apt-get install -y pgbouncer")
    parts = urllib.parse.urlsplit(database_url)
    user = parts.username or "postgres"
    folder = Path(tempfile.mkdtemp(prefix="hype-pgbouncer-"))
    try:
        (folder / "userlist.txt").write_text(f'"{user}" ""\n')
        listen_port = _free_port()
        config = folder / "pgbouncer.ini"
        config.write_text(
            pgbouncer_config(
                host=parts.hostname or "127.0.0.1",
                port=parts.port or 5432,
                listen_port=listen_port,
                pool_size=pool_size,
                user=user,
                folder=folder,
            )
        )
        command = [executable, str(config)]
        if os.geteuid() == 0:
            # pgbouncer refuses to run as root: -u makes it switch to PostgreSQL's own user,
            # who must be able to read its files (the folder is in the shared temp folder).
            command[1:1] = ["-u", "postgres"]
            for path in (folder, *folder.iterdir()):
                shutil.chown(path, user="postgres")
        with open(folder / "stderr.log", "wb") as log:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        try:
            _wait_listening(process, listen_port, folder)
            credentials = parts.netloc.rsplit("@", 1)
            host_port = f"127.0.0.1:{listen_port}"
            netloc = f"{credentials[0]}@{host_port}" if len(credentials) == 2 else host_port
            yield parts._replace(netloc=netloc).geturl()
        finally:
            process.terminate()
            try:
                process.wait(START_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _wait_listening(process: subprocess.Popen, port: int, folder: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            said = (folder / "stderr.log").read_text(errors="replace").strip()
            raise PgBouncerError(f"pgbouncer stopped at start: {said}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise PgBouncerError("pgbouncer did not start listening") from None
            time.sleep(0.05)


def _admin_show(bouncer_url: str, what: str) -> list[dict[str, str]]:
    """A SHOW command of pgbouncer's admin console (the pseudo-database "pgbouncer")."""
    import psycopg2

    admin = urllib.parse.urlsplit(bouncer_url)._replace(path="/pgbouncer").geturl()
    connection = psycopg2.connect(admin)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SHOW {what}")
            names = [column.name for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        connection.close()


def pgbouncer_servers(bouncer_url: str) -> list[dict[str, str]]:
    """One row per PostgreSQL connection pgbouncer holds (SHOW SERVERS)."""
    return [row for row in _admin_show(bouncer_url, "SERVERS") if row["database"] != "pgbouncer"]


def pgbouncer_pools(bouncer_url: str) -> list[dict[str, str]]:
    """One row per pool (database and user): clients active and waiting, servers (SHOW POOLS)."""
    return [row for row in _admin_show(bouncer_url, "POOLS") if row["database"] != "pgbouncer"]
