"""Real Redis and PostgreSQL servers on free loopback ports, for the tests that need them.

``scripts/test.sh`` installs them from Debian's packages. When a binary is missing the
fixtures fail loudly, naming the package: a suite that needs a server never passes
without one.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from strangler_cli.demo.estate import free_ports


_HANDED: set[int] = set()


def free_port() -> int:
    """A free loopback port not handed out before by this process: the kernel may give a
    port bound and closed a moment ago out again, and two servers of one test would share it."""
    (port,) = free_ports(1, taken=_HANDED)
    _HANDED.add(port)
    return port


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}")


@dataclass(frozen=True)
class Server:
    port: int
    url: str


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Server]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run scripts/test.sh, or apt-get install redis-server")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc, "redis-server")
        yield Server(port, f"redis://127.0.0.1:{port}")
    finally:
        proc.terminate()
        proc.wait(10)


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.fail("PostgreSQL is not installed: run scripts/test.sh, or apt-get install postgresql")
    return found[-1]


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to the postgres user when we are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


class Postgres:
    """A PostgreSQL server of our own on a free port, which a test may stop and start again
    (same data, same port): a database restart, as operations see one."""

    def __init__(self) -> None:
        self.initdb, self.postgres = _pg_bin("initdb"), _pg_bin("postgres")
        self.data = tempfile.mkdtemp(prefix="strangler-pg-")
        os.chmod(self.data, 0o777)
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres", "postgres")
        subprocess.run(_as_postgres([self.initdb, "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
                       check=True, capture_output=True)
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Postgres:
        self.proc = subprocess.Popen(_as_postgres([self.postgres, "-D", self.data, "-p", str(self.port), "-h", "127.0.0.1",
                                                   "-k", self.data, "-c", "fsync=off", "-c", "shared_buffers=32MB"]),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, self.proc, "postgres")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            # a fast shutdown, as a restart does: sessions are cut, in-flight transactions rolled back
            subprocess.run(_as_postgres([_pg_bin("pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop"]),
                           capture_output=True, timeout=60)
            self.proc.wait(20)
            self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    pg = Postgres()
    try:
        pg.start()
        yield Server(pg.port, pg.url)
    finally:
        pg.remove()


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if found is None:
        pytest.fail("nginx is not installed: run scripts/test.sh, or apt-get install nginx-light")
    return found


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
    if found is None:
        pytest.fail("haproxy is not installed: run scripts/test.sh, or apt-get install haproxy")
    return found


NGINX_MAIN = """worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {access};
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    include {include};
}}
"""


class Nginx:
    """A real nginx in a folder of its own, serving an ``http {}`` include (an export)."""

    def __init__(self, folder: str, include: str, port: int, access: str = "off") -> None:
        self.dir, self.port = folder, port
        self.include = os.path.join(folder, "strangler.conf")
        with open(self.include, "w") as f:
            f.write(include)
        self.main = os.path.join(folder, "nginx.conf")
        with open(self.main, "w") as f:
            f.write(NGINX_MAIN.format(dir=folder, include=self.include, access=access))
        self.binary = nginx_binary()
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self, *extra: str) -> list[str]:
        return [self.binary, "-p", self.dir, "-c", self.main, *extra]

    def start(self) -> Nginx:
        check = subprocess.run(self.command("-t"), capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        with open(os.path.join(self.dir, "stderr.log"), "ab") as err:
            self.proc = subprocess.Popen(self.command("-g", "daemon off;"), stderr=err)
        _wait_port(self.port, self.proc, "nginx")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class HAProxy:
    """A real HAProxy (master-worker, reloadable with SIGUSR2) on an exported configuration."""

    def __init__(self, folder: str, config: str, port: int) -> None:
        self.dir, self.port = folder, port
        self.config = os.path.join(folder, "haproxy.cfg")
        self.pidfile = os.path.join(folder, "haproxy.pid")  # the master's: SIGUSR2 reloads
        with open(self.config, "w") as f:
            f.write(config)
        self.binary = haproxy_binary()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> HAProxy:
        check = subprocess.run([self.binary, "-c", "-f", self.config], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        with open(os.path.join(self.dir, "haproxy.log"), "ab") as err:
            self.proc = subprocess.Popen([self.binary, "-W", "-db", "-f", self.config, "-p", self.pidfile],
                                         stdout=err, stderr=err)
        _wait_port(self.port, self.proc, "haproxy")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
