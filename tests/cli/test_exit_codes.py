"""The CLI's exit codes keep the README's promise (issue 23, item 1): 0 success, 1 bad input,
2 a usage error, 3 a bug only, 4 a gate that did not pass. Table-driven over every
subcommand's usage errors."""

from __future__ import annotations

import pytest

from tests.cli.helpers import strangler

pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


USAGE = [
    ("release", "promote"), ("release", "set", "orders"), ("release", "status", "--format", "xml"),
    ("loadtest", "nosuch"), ("impact", "db"), ("demo", "--step-seconds", "-1"),
    ("proxy", "--routes", "r.yaml", "--workers", "0"), ("proxy", "--routes", "r.yaml", "--admin", "nohost"),
    ("analyze", "--format", "pdf"), ("routes",), ("routes", "explain", "r.yaml"), ("wait",), ("schema", "nosuch"),
    ("shadow", "report", "--gate", "2", "--state", "x"), ("export-startup", "--to", "nomad"), ("nosuchcommand",),
]


@pytest.mark.parametrize("line", USAGE, ids=[" ".join(x) for x in USAGE])
def test_usage_errors_exit_2_with_a_one_line_reason(line: tuple[str, ...], tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = strangler(*line, cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and "error:" in r.stderr


def test_no_command_prints_the_help_and_analyse_is_an_alias() -> None:
    r = strangler()
    assert r.returncode == 0 and "COMMAND" in r.stdout and "analyze" in r.stdout
    r = strangler("analyse", "--example", "portal", "--format", "json")
    assert r.returncode == 0 and '"components"' in r.stdout


def test_a_failed_gate_is_4_and_bad_input_is_1(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from strangler_proxy import ShadowStore, default_path  # noqa: F401  # the state the report reads

    routes = tmp_path / "r.yaml"
    routes.write_text("upstreams: {legacy: 'http://127.0.0.1:9', svc: 'http://127.0.0.1:10'}\nmodules:\n"
                      "  cases: {match: {path_prefix: /c}, service: svc, stage: shadow}\n")
    r = strangler("analyze", str(tmp_path / "missing.yaml"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    state = tmp_path / "state.sqlite3"
    from strangler_proxy import open_store

    open_store(state).close()
    r = strangler("shadow", "report", "--routes", str(routes), "--state", str(state), "--gate", "0.9")
    assert r.returncode == 4, (r.returncode, r.stdout, r.stderr)


def test_proxy_writes_its_token_only_once_it_listens(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 23, item 5: a start refused for its inputs leaves no .strangler/admin-token."""
    import os
    import signal
    import socket
    import subprocess
    import time

    from tests.cli.helpers import BIN
    from tests.servers import free_port

    r = strangler("proxy", "--routes", str(tmp_path / "missing.yaml"), "--listen", f"127.0.0.1:{free_port()}", cwd=tmp_path)
    assert r.returncode == 1 and not (tmp_path / ".strangler").exists()
    routes = tmp_path / "r.yaml"
    routes.write_text("upstreams: {legacy: 'http://127.0.0.1:9'}\n")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        r = strangler("proxy", "--routes", str(routes), "--listen", f"127.0.0.1:{free_port()}", "--admin",
                      f"127.0.0.1:{taken}", cwd=tmp_path)
    assert r.returncode == 1 and "cannot listen" in r.stderr and not (tmp_path / ".strangler" / "admin-token").exists()
    assert BIN
    proc = subprocess.Popen([BIN, "proxy", "--routes", str(routes), "--listen", f"127.0.0.1:{free_port()}", "--admin",
                             f"127.0.0.1:{free_port()}"], cwd=tmp_path, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        token = str(tmp_path / ".strangler" / "admin-token")
        while not os.path.exists(token) and time.monotonic() < deadline:
            pass  # no sleep: the SIGTERM below goes out the moment the file appears (a sleep hid a window)
        assert (tmp_path / ".strangler" / "admin-token").stat().st_mode & 0o777 == 0o600
    finally:
        proc.send_signal(signal.SIGTERM)  # at once: the token file says it is up, so SIGTERM is a clean stop
        assert proc.wait(30) == 0


def test_errors_read_as_sentences_without_errno_codes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 23, item 3: no '[Errno 21]', no 'None: no such file', and the admin port in use
    says how to move it."""
    import socket

    from tests.servers import free_port

    r = strangler("routes", "check", str(tmp_path))
    assert r.returncode == 1 and "cannot read file: it is a directory" in r.stderr and "Errno" not in r.stderr
    routes = tmp_path / "r.yaml"
    routes.write_text("upstreams: {legacy: 'http://127.0.0.1:9'}\n")
    r = strangler("proxy", "--routes", str(routes), "--listen", f"127.0.0.1:{free_port()}", "--admin", "off",
                  "--tls-cert", str(tmp_path / "missing.pem"))
    assert r.returncode == 1 and f"--tls-cert {tmp_path / 'missing.pem'}: no such file" in r.stderr and "None" not in r.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        r = strangler("proxy", "--routes", str(routes), "--listen", f"127.0.0.1:{free_port()}", "--admin",
                      f"127.0.0.1:{busy.getsockname()[1]}", "--admin-token", "t0ken")
    assert r.returncode == 1 and "choose another with --admin HOST:PORT, or --admin off" in r.stderr


def test_output_files_follow_the_umask_and_a_folder_leaves_no_hidden_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 23, item 6: -o files were created 0600, and -o DIR left a hidden temporary file."""
    import os

    out = tmp_path / "plan.txt"
    old = os.umask(0o022)
    try:
        r = strangler("analyze", "--example", "portal", "-o", str(out))
    finally:
        os.umask(old)
    assert r.returncode == 0 and out.stat().st_mode & 0o777 == 0o644
    folder = tmp_path / "reports"
    folder.mkdir()
    r = strangler("analyze", "--example", "portal", "-o", str(folder))
    assert r.returncode == 1 and "it is a directory" in r.stderr
    assert list(tmp_path.iterdir()) == [out, folder] or sorted(p.name for p in tmp_path.iterdir()) == ["plan.txt", "reports"]


def test_an_admin_address_that_is_not_strangler_is_a_one_line_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """--admin aimed at another web server (the proxy's data port, say, where legacy answers):
    each command that calls the admin API exits 1 saying what answered and what to check, on
    one line, with the server's control characters escaped; never a JSON traceback."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    page = b"<!doctype html>\n<html>\x1b[31m" + b"legacy portal\n" * 40 + b"</html>\n"

    class Legacy(BaseHTTPRequestHandler):
        def answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def do_GET(self) -> None:  # noqa: N802 (http.server's names)
            self.answer(200)

        def do_POST(self) -> None:  # noqa: N802
            self.answer(500)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Legacy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    admin = f"127.0.0.1:{server.server_address[1]}"
    routes = tmp_path / "r.yaml"
    routes.write_text("upstreams: {legacy: 'http://127.0.0.1:9'}\n")
    try:
        runs = {
            "status": strangler("status", "--admin", admin, "--token", "t"),
            "release": strangler("release", "status", "--admin", admin, "--token", "t"),
            "explain": strangler("routes", "explain", str(routes), "GET", "/x", "--admin", admin, "--token", "t"),
            "dashboard": strangler("dashboard", "--admin", admin, "--token", "t", "--no-browser"),
        }
    finally:
        server.shutdown()
        server.server_close()
    for name, r in runs.items():
        assert r.returncode == 1 and "Traceback" not in r.stderr, (name, r.returncode, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "\x1b" not in r.stderr and "\\x1b" in r.stderr, (name, r.stderr)
    for name in ("status", "release", "explain"):  # 200 and a web page: not the admin API
        assert "200, but not from a strangler admin API (expected a JSON" in runs[name].stderr, runs[name].stderr
        assert "is --admin the proxy's admin listener, not its data port?" in runs[name].stderr
    # refused with a page: its start, on one line, cut
    assert "POST /ui/tickets: 500: <!doctype html> <html>\\x1b[31mlegacy portal" in runs["dashboard"].stderr
    assert runs["dashboard"].stderr.rstrip().endswith(" ...")
