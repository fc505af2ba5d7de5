"""Readiness checks against real servers: TCP, HTTP, command, file, log, PostgreSQL, Redis."""

from __future__ import annotations

import pytest

import asyncio
import socket
from pathlib import Path

from strangler_analyzer.model import Check
from strangler_analyzer.startup.checks import Outcome, attempt
from tests.servers import Server, free_port


pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


def run(check: Check, timeout: float = 2.0) -> Outcome:
    return asyncio.run(attempt(check, timeout))


def test_postgres_and_redis_through_their_own_protocols(postgres_server: Server, redis_server: Server) -> None:
    assert run(Check("postgres", postgres_server.url)) == Outcome(True, "accepting connections")
    # an unknown role is a server that is up: pg_isready says so too
    assert run(Check("postgres", f"postgresql://nobody@127.0.0.1:{postgres_server.port}/x")).ready
    assert run(Check("redis", redis_server.url)) == Outcome(True, "PONG")
    assert run(Check("redis", f"redis://127.0.0.1:{free_port()}")) == Outcome(False, "connection refused")
    assert run(Check("postgres", f"postgresql://127.0.0.1:{free_port()}/x")) == Outcome(False, "connection refused")


def test_tcp_command_file_and_log(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert run(Check("tcp", f"127.0.0.1:{s.getsockname()[1]}")).ready
    assert run(Check("command", "exit 0")).ready
    failed = run(Check("command", "echo not yet >&2; exit 2"))
    assert failed == Outcome(False, "exit 2: not yet")
    slow = run(Check("command", "sleep 5"), timeout=0.3)
    assert not slow.ready and "0.3 s" in slow.detail
    log = tmp_path / "app.log"
    assert run(Check("log", str(log), {"pattern": "Server startup in"})).detail == "no such file or directory"
    log.write_text("INFO deploying\nINFO Server startup in 4521 ms\n")
    assert run(Check("log", str(log), {"pattern": r"^INFO Server startup in \d+ ms$"})).ready
    assert run(Check("file", str(log))).ready and not run(Check("file", str(tmp_path / "nope"))).ready
