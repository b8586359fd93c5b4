"""A PostgreSQL server for the tests, and a fresh database on it for each test.

The server is the one ``WANDB_BRIDGE_TEST_POSTGRES`` names (a URL whose role may CREATE
DATABASE), or else one this module starts from Debian's ``postgresql`` package: ``initdb``
a cluster in a temporary directory, ``pg_ctl start`` it on a free loopback port (its unix
socket in that directory too), ``pg_ctl stop`` and delete it all at the end. PostgreSQL
refuses to run as root, so under root the cluster belongs to, and the server runs as, the
``postgres`` user that the Debian package creates (``nobody`` if there is none).

``start_own()`` always starts such a cluster, for a test that restarts or kills the server
(``server.cluster.restart()``, ``.kill_postmaster()``, ``.start_again()``).

Each test gets a database of its own (``CREATE DATABASE`` from template0, dropped after).
That costs ~20 ms on tmpfs but ~300 ms on a VM's disk even with ``fsync=off``, so the
throwaway cluster lives in /dev/shm when that tmpfs has room; it need not survive a crash.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
from contextlib import ExitStack
from pathlib import Path

import psycopg

ENV = "WANDB_BRIDGE_TEST_POSTGRES"
HOW_TO_ENABLE = (
    "install Debian's postgresql package (apt-get install postgresql) or set "
    f"{ENV}=postgresql://USER:PASSWORD@HOST:PORT/DB (a role that may CREATE DATABASE)"
)
_SUPERUSER = "postgres"  # the cluster's superuser role (trust auth on loopback only)


class PostgresServer:
    """A reachable server; ``new_database()`` makes an empty database and returns its URL."""

    def __init__(self, admin_url: str, cluster: _Cluster | None = None) -> None:
        self.admin_url = admin_url
        self.cluster = cluster
        self._admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=10)
        self._names = (f"wbt_{os.getpid()}_{n}" for n in itertools.count(1))
        self._created: list[str] = []
        self._released: list[str] = []

    def new_database(self) -> str:
        self._drop_released()
        name = next(self._names)
        # FILE_COPY from template0: no WAL for the copy; its checkpoints are cheap with fsync off
        self._admin.execute(f"CREATE DATABASE {name} TEMPLATE template0 STRATEGY FILE_COPY")
        self._created.append(name)
        return self.database_url(name)

    def database_url(self, name: str) -> str:
        return urllib.parse.urlsplit(self.admin_url)._replace(path=f"/{name}").geturl()

    def drop_database(self, url: str) -> None:
        """Drop a database ``new_database`` made, ending any session still on it.

        Done at the next ``new_database`` (or ``close``): a session closed just now may not
        have ended on the server yet, and DROP DATABASE would wait 100 ms for it.
        """
        name = urllib.parse.urlsplit(url).path.lstrip("/")
        if name in self._created:
            self._created.remove(name)
            self._released.append(name)

    def _drop_released(self) -> None:
        while self._released:
            self._admin.execute(f"DROP DATABASE IF EXISTS {self._released.pop()} WITH (FORCE)")

    def close(self) -> None:
        """Drop every database made here (on a server we were given), stop ours."""
        try:
            if self.cluster is None:
                self._released += self._created
                self._created = []
                self._drop_released()
        finally:
            self._admin.close()
            if self.cluster is not None:
                self.cluster.stop()


def start() -> tuple[PostgresServer | None, str]:
    """The server to test against, or None and the reason there is none."""
    url = os.environ.get(ENV)
    if url:
        try:
            return PostgresServer(url), ""
        except psycopg.Error as exc:
            return None, f"cannot connect to the server {ENV} names: {exc}"
    return start_own(crash_safe=False)


def store_url(backend: str, tmp: Path, stack: ExitStack) -> tuple[str | None, str]:
    """A store URL for ``backend``: a SQLite file in ``tmp``, or a new database on the
    server :func:`start` gives (closed when ``stack`` closes). ``(None, reason)`` when
    PostgreSQL is asked for and no server can be had."""
    if backend != "postgresql":
        return f"sqlite:///{tmp / 'bridge.db'}", ""
    server, reason = start()
    if server is None:
        return None, reason
    stack.callback(server.close)
    return server.new_database(), ""


def start_own(crash_safe: bool = True) -> tuple[PostgresServer | None, str]:
    """A throwaway cluster of the caller's own, never the one ``WANDB_BRIDGE_TEST_POSTGRES``
    names: a test may restart or kill it (``server.cluster``). Or None and the reason.

    ``crash_safe``: a commit is in the WAL, in the OS's hands, before it returns, so it
    survives a kill -9 of the server (not a power cut: fsync stays off). Without it, the
    last ~200 ms of commits die with the server's shared memory."""
    bindir = find_bindir()
    if bindir is None:
        return None, "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin"
    cluster = _Cluster(bindir, crash_safe)
    try:
        cluster.start()
        return PostgresServer(cluster.url, cluster), ""
    except (OSError, subprocess.SubprocessError, psycopg.Error) as exc:
        cluster.stop()
        return None, f"PostgreSQL from {bindir} did not start: {exc}"


def find_bindir() -> Path | None:
    """The newest installed server's bin directory (Debian: /usr/lib/postgresql/N/bin)."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/postgres")]
    found.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return found[-1] if found else None


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped yet does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Cluster:
    """A throwaway cluster in a temporary directory, owned by an unprivileged user if root."""

    def __init__(self, bindir: Path, crash_safe: bool) -> None:
        self.bindir = bindir
        self.crash_safe = crash_safe
        shm = os.path.isdir("/dev/shm") and shutil.disk_usage("/dev/shm").free > 1 << 30
        self.dir = Path(
            tempfile.mkdtemp(prefix="wandb-bridge-pg-", dir="/dev/shm" if shm else None)
        )
        self.data, self.log = self.dir / "data", self.dir / "server.log"
        self.url = ""
        self._user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:  # PostgreSQL will not run as root
            try:
                self._user = pwd.getpwnam("postgres")  # Debian's postgresql package makes it
            except KeyError:
                self._user = pwd.getpwnam("nobody")
            os.chown(self.dir, self._user.pw_uid, self._user.pw_gid)
        self._started = False
        self._options = ""

    def _run(self, *args: str, timeout: float = 60) -> None:
        user = self._user
        proc = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            cwd=self.dir,  # the user may not be allowed into ours
            env={**os.environ, "LC_ALL": "C", "TZ": "UTC"},
            user=None if user is None else user.pw_uid,
            group=None if user is None else user.pw_gid,
            extra_groups=None if user is None else [],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise subprocess.SubprocessError(
                f"{args[0]} {args[1] if len(args) > 1 else ''} exited {proc.returncode}: "
                f"{proc.stdout}{proc.stderr}{log}".strip()
            )

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", _SUPERUSER, "--auth=trust",
                  "--encoding=UTF8", "--no-locale", "--no-sync", "--no-instructions")  # fmt: skip
        for attempt in range(3):  # the free port may be taken before the server binds it
            port = _free_port()
            options = (
                f"-h 127.0.0.1 -p {port} -k {self.dir} -c fsync=off -c full_page_writes=off "
                f"-c synchronous_commit={'on' if self.crash_safe else 'off'} "
                "-c shared_buffers=32MB -c max_connections=200"
            )
            try:
                self._pg_ctl_start(options)
            except subprocess.SubprocessError:
                if attempt == 2 or "already in use" not in self.log.read_text():
                    raise
                continue
            self._started, self._options = True, options
            self.url = f"postgresql://{_SUPERUSER}@127.0.0.1:{port}/postgres"
            return

    def _pg_ctl_start(self, options: str) -> None:
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data),
                  "-l", str(self.log), "-o", options)  # fmt: skip

    def restart(self, mode: str = "fast") -> None:
        """``pg_ctl restart -m MODE``: every session ends, the server comes back."""
        self._run("pg_ctl", "restart", "-w", "-t", "60", "-m", mode, "-D", str(self.data),
                  "-l", str(self.log), "-o", self._options)  # fmt: skip

    def kill_postmaster(self) -> None:
        """``kill -9`` the postmaster, as a crash would; its backends notice and exit."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)

    def start_again(self) -> None:
        """Start the server after a kill, on the same port (it recovers from its WAL).

        Retried while backends of the killed server still hold its shared memory."""
        deadline = time.monotonic() + 30
        while True:
            try:
                self._pg_ctl_start(self._options)
                return
            except subprocess.SubprocessError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server (pg_ctl signals the postmaster's pid) and delete the cluster."""
        try:
            if self._started:
                self._started = False
                self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data))
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
