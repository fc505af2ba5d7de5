"""``strangler observe`` against real processes on loopback: a client holding connections to
a server it did not start, both mapped to components through an inventory's ``process:``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from tests.cli.helpers import BIN, strangler
from tests.servers import free_port

pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')

SERVER = ("import socket, sys\n"
          "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
          "s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); held = []\n"
          "while True: held.append(s.accept()[0]); print('accepted', flush=True)\n")
CLIENT = ("import socket, sys, time\n"
          "held = [socket.create_connection(('127.0.0.1', int(sys.argv[1]))) for _ in range(3)]\n"
          "print('connected', flush=True); time.sleep(120)\n")


@pytest.fixture
def pair() -> Iterator[int]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port), "strangler-test-server"],
                              stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        client = None
        while client is None and time.monotonic() < deadline:
            probe = subprocess.run([sys.executable, "-c", f"import socket; socket.create_connection(('127.0.0.1', {port}))"],
                                   capture_output=True)
            if probe.returncode == 0:
                client = subprocess.Popen([sys.executable, "-c", CLIENT, str(port), "strangler-test-client"],
                                          stdout=subprocess.PIPE, text=True)
                assert client.stdout is not None and client.stdout.readline().strip() == "connected"
                # connected is not accepted: wait until the server holds the probe's and the client's 3
                # sockets, or a reader sees one still in the accept queue (no inode yet) and the next has it
                assert server.stdout is not None
                assert [server.stdout.readline().strip() for _ in range(4)] == ["accepted"] * 4
            else:
                time.sleep(0.1)
        assert client is not None
        try:
            yield port
        finally:
            client.kill()
            client.wait()
            if client.stdout is not None:
                client.stdout.close()
    finally:
        server.kill()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()


def test_observe_sees_the_client_process_calling_the_server_and_analyze_maps_them(pair: int, tmp_path: Path) -> None:
    out = tmp_path / "host.jsonl"
    r = strangler("observe", "--duration", "2s", "--interval", "0.5s", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "snapshots" in r.stderr and "written" in r.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    schema = json.loads(strangler("schema", "observe").stdout)
    for line in lines:
        jsonschema.validate(line, schema)
    header, flows = lines[0], lines[1:]
    assert header["schema"] == "strangler.observe/1" and header["snapshots"] >= 3 and header["window"][1] > header["window"][0]
    mine = [f for f in flows if "strangler-test-client" in f["client"].get("cmdline", "") and f["server"]["port"] == pair]
    assert len(mine) == 1, flows
    flow = mine[0]
    assert flow["connections"] == 3 and flow["snapshots"] >= 3  # three sockets, one flow: client ports are not kept
    assert "strangler-test-server" in flow["server"]["cmdline"] and flow["server"]["ip"] == "127.0.0.1"
    assert flow["first_seen"] <= flow["last_seen"]
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("components:\n"
                         f"  server: {{tier: app, port: {pair}, process: 'strangler-test-server'}}\n"
                         "  client: {tier: app, process: 'strangler-test-client'}\n")
    r = strangler("analyze", str(inventory), str(out), "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    edge = next(e for e in doc["edges"] if (e["from"], e["to"]) == ("client", "server"))
    assert edge["evidence"][0]["kind"] == "observed.observe" and edge["strength"] == "soft" and not edge["ordered"]
    assert any(d["kind"] == "observed_undeclared" and (d["from"], d["to"]) == ("client", "server") for d in doc["drift"])


def test_sigterm_stops_observe_with_what_it_has(pair: int, tmp_path: Path) -> None:
    out = tmp_path / "host.jsonl"
    assert BIN
    proc = subprocess.Popen([BIN, "observe", "--duration", "10m", "--interval", "0.2s", "-o", str(out)],
                            stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    lines = out.read_text().splitlines()
    assert json.loads(lines[0])["snapshots"] >= 2
    assert any(json.loads(line)["server"]["port"] == pair for line in lines[1:])


def test_observe_usage_errors_exit_2(tmp_path: Path) -> None:
    r = strangler("observe", "--interval", "0", "--duration", "1s")
    assert r.returncode == 2 and "above 0" in r.stderr


def test_the_kernel_netlink_view_and_proc_net_tcp_agree(pair: int) -> None:
    """observe reads sock_diag (as ss does) and falls back to /proc/net/tcp{,6}: both see the same sockets."""
    from strangler_analyzer.observed.procnet import diag_sockets, parse_proc_net

    netlink = diag_sockets()
    assert netlink is not None, "sock_diag netlink is available on this machine"
    text = [s for name in ("tcp", "tcp6") for s in parse_proc_net(Path(f"/proc/net/{name}").read_text())]

    def mine(sockets):  # type: ignore[no-untyped-def]
        return {(state, local, remote, inode) for state, local, remote, inode in sockets if pair in (local[1], remote[1])}

    assert mine(netlink) == mine(text) and len(mine(netlink)) == 7  # the listener, and both ends of 3 connections


def test_another_users_processes_are_counted_and_their_connections_still_seen(pair: int) -> None:
    """Unprivileged, as documented: run as ``nobody``, observe cannot read the descriptors of
    the test's (root's) server and client, so it counts them as unreadable, says so, and still
    records the flow, without a process it could not see (never one it guessed)."""
    import os
    import shutil

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("runs observe as another user: needs root and setpriv (util-linux)")
    assert BIN
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", BIN, "observe",
                        "--duration", "1s", "--interval", "0.5s"], capture_output=True, text=True, timeout=60, cwd="/")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    header, flows = lines[0], lines[1:]
    assert header["hidden_processes"] >= 2  # at least the pair's two processes (root's)
    assert f"{header['hidden_processes']} processes not readable by this user" in r.stderr
    mine = [f for f in flows if f["server"]["port"] == pair]
    assert len(mine) == 1 and mine[0]["connections"] == 3, flows
    assert "cmdline" not in mine[0]["client"] and "cmdline" not in mine[0]["server"]  # not readable: not named
