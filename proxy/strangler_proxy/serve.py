"""Serving: uvicorn with per-worker SO_REUSEPORT listeners, the admin listener, hot reload.

One worker serves the proxy and the admin API in one process. With ``workers > 1`` the
parent forks the workers, each with its own listening socket bound with SO_REUSEPORT so
the kernel spreads connections evenly (uvicorn's shared socket leaves most on one worker);
the parent serves the admin API, forwards SIGHUP, and aggregates the workers' metrics.
Runtime changes reach workers through the state store, polled every ``poll`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import socket
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from strangler_common import ConfigError
from strangler_proxy.config import load_routes
from strangler_proxy.model import RouteTable
from strangler_proxy.control.background import Background
from strangler_proxy.control.identity import Operators
from strangler_proxy.errors import ProxyError, RouteConfigError
from strangler_proxy.dataplane.health import DEFAULT_PREFIX, Health
from strangler_proxy.dataplane.listener import Guard, protocol_classes
from strangler_proxy.selfref import check_not_self
from strangler_proxy.shadow.helper import spawn

__all__ = ["ServeOptions", "run"]  # public (the CLI's and loadtests' imports are checked against it)


@dataclass(frozen=True, slots=True)
class ServeOptions:
    routes: Path
    listen: tuple[str, int]
    admin: tuple[str, int] | None
    workers: int
    state: Path  # local SQLite: shadow evidence, activity (and the state itself without shared_state)
    token: str
    access_log: bool = False
    poll: float = 0.5
    shared_state: str | None = None  # postgresql:// URL: stages, weights, releases and ledger shared by replicas
    health_prefix: str | None = DEFAULT_PREFIX  # probes on the data port ({prefix}/healthz, /readyz); None: off
    drain_timeout: float = 30.0  # on SIGTERM: seconds in-flight requests and streams may take to finish
    tls_cert: Path | None = None  # TLS on the listener: certificate chain and key (PEM)
    tls_key: Path | None = None
    tokens_file: Path | None = None  # one admin token per named operator (the ledger's actor)


def bind(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ProxyError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handling: ours stops every server at once."""

    def capture_signals(self):  # type: ignore[no-untyped-def]
        from contextlib import nullcontext

        return nullcontext()


def _config(app: Any, guard: Guard, opts: ServeOptions | None = None) -> uvicorn.Config:
    """uvicorn's configuration for the data listener (``opts`` given) or the admin API: both
    behind the listener's protocol (head limits, timeouts, the connection cap)."""
    proxy = opts is not None
    tls = listener_tls(opts.tls_cert, opts.tls_key) if opts is not None and opts.tls_cert is not None else None
    http, ws = protocol_classes(guard, tls)
    return uvicorn.Config(
        app, http=http, ws=ws if proxy else "none",
        lifespan="on" if proxy else "off", access_log=False, server_header=False, date_header=False,
        log_level="warning", timeout_keep_alive=75, backlog=2048,
        # the client address is the peer's: never taken from a client-sent X-Forwarded-For
        # (it may be a cohort key; trusted_proxies says whose header counts), and no
        # middleware layer on the hot path
        proxy_headers=False, interface="asgi3",
        # uvicorn's graceful shutdown: stop accepting, let in-flight requests finish for this
        # long, then cancel what is left
        timeout_graceful_shutdown=math.ceil(opts.drain_timeout) if opts is not None else None,
    )


def listener_tls(cert: Path, key: Path | None) -> ssl.SSLContext:
    """The listener's TLS context (as uvicorn would make it); the listener's protocol does
    the handshake itself, so that it is counted and timed from accept."""
    return uvicorn.config.create_ssl_context(cert, key, None, ssl.PROTOCOL_TLS_SERVER, ssl.CERT_NONE, None, "TLSv1")


def operators(opts: ServeOptions) -> Operators:
    """The proxy's own token (operator ``admin``) and those of the tokens file."""
    ops = Operators.single(opts.token)
    if opts.tokens_file is not None:
        try:
            ops.load(opts.tokens_file)
        except ConfigError as exc:
            raise ProxyError(str(exc)) from None
    return ops


def check_tls_files(cert: Path | None, key: Path | None) -> None:
    """Refuse to start with a listener certificate that cannot be loaded, saying why (uvicorn
    would fail later with a traceback)."""
    if cert is None and key is None:
        return
    if cert is None:
        raise ProxyError("--tls-key needs --tls-cert")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except FileNotFoundError as exc:
        raise ProxyError(f"{exc.filename}: no such file (listener TLS)") from None
    except (ssl.SSLError, OSError) as exc:
        raise ProxyError(f"--tls-cert {cert}" + (f" --tls-key {key}" if key else "")
                         + f": cannot be loaded as a PEM certificate chain and key: {exc}") from None


def _log(message: str) -> None:
    print(f"strangler proxy [{os.getpid()}]: {message}", file=sys.stderr, flush=True)


class Reloader:
    """Re-reads the route file on change or SIGHUP; a bad file keeps the old table."""

    def __init__(self, path: Path, install: Callable[[RouteTable], None], on_result: Callable[[str], None]) -> None:
        self.path = path
        self.install = install
        self.on_result = on_result
        self.stamp = self._stamp()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def reload(self) -> str | None:
        self.stamp = self._stamp()
        try:
            table = load_routes(self.path)
            self.install(table)
        except Exception as exc:  # anything at all: the previous table stays, the watcher lives
            text = str(exc) if isinstance(exc, (RouteConfigError, ProxyError)) else f"{self.path}: {type(exc).__name__}: {exc}"
            _log(f"reload rejected, keeping the previous table: {text}")
            self.on_result("error")
            return text
        self.on_result("ok")
        _log(f"reloaded {self.path}: {len(table.modules)} modules")
        return None

    def changed(self) -> bool:
        return self._stamp() != self.stamp


def _own_listeners(opts: ServeOptions) -> list[tuple[str, tuple[str, int]]]:
    return [("listener", opts.listen)] + ([("admin API", opts.admin)] if opts.admin else [])


def run(opts: ServeOptions) -> int:
    table = load_routes(opts.routes)  # refuse to start on a bad table
    check_tls_files(opts.tls_cert, opts.tls_key)
    if opts.admin is not None:
        operators(opts)  # a bad tokens file stops the start, with its line
    check_not_self(table, _own_listeners(opts))
    if opts.workers > 1:
        return _run_workers(opts, table)
    import uvloop

    listener = bind(*opts.listen, reuse_port=False)
    uvloop.run(_serve_one(opts, table, listener, with_admin=True, helper_proc=spawn(str(opts.state))))
    return 0


async def _serve_one(opts: ServeOptions, table: RouteTable, sock: socket.socket, with_admin: bool,
                     helper_proc: tuple[socket.socket, int]) -> None:
    from strangler_proxy.control.admin import build_admin
    from strangler_proxy.dataplane.app import ProxyApp
    from strangler_proxy.metrics import Metrics
    from strangler_proxy.control.plane import ControlPlane
    from strangler_proxy.dataplane.runtime import Runtime
    from strangler_proxy.shadow.helper import HelperClient
    from strangler_proxy.state import open_store

    store = open_store(opts.shared_state or opts.state)
    loop = asyncio.get_running_loop()
    runtime = Runtime(table, Metrics(), store.overrides(), loop)
    background = Background(_log)
    # every process publishes its release windows and legacy activity; the one that may
    # lead (here, unless a workers' parent does) runs the controller
    plane = ControlPlane(runtime, store, background, opts.state, _log, lead=with_admin)
    controller = plane.controller

    def install(new: RouteTable) -> None:
        check_not_self(new, _own_listeners(opts))
        if controller is not None:  # a reload cannot retire a module legacy still serves
            for m in new.modules:
                old = runtime.snapshot.modules.get(m.name)
                if m.stage == "retired" and old is not None and old.stage != "retired":
                    refusal = controller.retire_refusal(m)
                    if refusal:
                        raise ProxyError(f"{new.source}: module {m.name}: {refusal}")
        runtime.swap_table(new)

    reloader = Reloader(opts.routes, install, lambda r: runtime.metrics.reloads.labels(r).inc())
    metrics = runtime.metrics

    def on_counts(counts: dict[tuple[str, str, str], int]) -> None:
        for (counter, module, reason), n in counts.items():
            if counter == "skipped":
                metrics.shadow_skipped.labels(module, reason).inc(n)
            elif counter == "error":
                metrics.errors.labels(module, "shadow", reason).inc(n)
            else:
                getattr(metrics, f"shadow_{counter}").labels(module).inc(n)

    helper = HelperClient(*helper_proc, on_counts, lambda m, r: metrics.shadow_skipped.labels(m, r).inc())
    helper.start(loop)
    # ready: the table is loaded (we would not be serving otherwise) and the state store
    # answered its last poll; not ready while draining for shutdown
    health = Health(opts.health_prefix, plane.not_ready) if opts.health_prefix else None
    app = ProxyApp(runtime, mirror=helper, windows=plane.windows, activity=plane.activity,
                   access_log=_access_logger() if opts.access_log else None, health=health)
    guard = Guard(lambda: runtime.snapshot.table.limits, lambda reason: metrics.client_closed.labels(reason).inc())
    servers = [_Server(_config(app, guard, opts))]
    sockets = [[sock]]
    if with_admin and opts.admin is not None:
        admin_guard = Guard(lambda: runtime.snapshot.table.limits, lambda reason: metrics.client_closed.labels(reason).inc())
        servers.append(_Server(_config(build_admin(runtime, store, operators(opts), reloader.reload, background.call,
                                                   controller=controller), admin_guard)))
        sockets.append([bind(*opts.admin, reuse_port=False)])

    def stop() -> None:
        if health is not None:
            health.draining = True
        if not servers[0].should_exit:
            _log(f"stopping: no new connections; in-flight requests have {opts.drain_timeout:g} s to finish")
        for s in servers:
            s.should_exit = True

    loop.add_signal_handler(signal.SIGINT, stop)
    loop.add_signal_handler(signal.SIGTERM, stop)
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(background.step("route reload", reloader.reload)))

    async def watch() -> None:
        """The control plane's heartbeat: every step off the loop, none able to end it."""
        while True:
            await asyncio.sleep(opts.poll)
            try:
                await plane.tick()
                if reloader.changed():
                    await background.step("route reload", reloader.reload)
            except Exception as exc:  # never reached by design; if it is, say so and go on
                _log(f"control loop: {type(exc).__name__}: {exc}; it goes on")

    watcher = loop.create_task(watch())
    _log(f"listening on {'https' if opts.tls_cert else 'http'}://{opts.listen[0]}:{opts.listen[1]}" + (
        f", admin on http://{opts.admin[0]}:{opts.admin[1]}" if with_admin and opts.admin else ""))
    try:
        await asyncio.gather(*(s.serve(sockets=socks) for s, socks in zip(servers, sockets)))
    finally:
        watcher.cancel()
        helper.close()
        await plane.close()
        background.close()
        runtime.close()
        store.close()
        _log("stopped")


def _access_logger() -> Callable[[dict[str, Any]], None]:
    out = sys.stdout

    def log(entry: dict[str, Any]) -> None:
        out.write(json.dumps(entry, separators=(",", ":")) + "\n")

    return log


def _run_workers(opts: ServeOptions, table: RouteTable) -> int:
    metrics_dir = tempfile.mkdtemp(prefix="strangler-metrics-")
    children: list[int] = []
    for _ in range(opts.workers):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                _multiprocess_metrics(metrics_dir)
                import uvloop

                listener = bind(*opts.listen, reuse_port=True)
                uvloop.run(_serve_one(opts, table, listener, with_admin=False, helper_proc=spawn(str(opts.state))))
            except BaseException as exc:  # a worker must never return into the parent's code
                _log(f"worker failed: {exc}")
                code = 1
            os._exit(code)
        children.append(pid)
    import uvloop

    try:
        uvloop.run(_parent(opts, table, children, metrics_dir))
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + opts.drain_timeout + 5  # each worker drains, then is killed
        for pid in children:
            while time.monotonic() < deadline:
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                time.sleep(0.05)
            else:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
    return 0


def _multiprocess_metrics(directory: str) -> None:
    """Workers write their metrics to files the parent aggregates (prometheus_client's
    multiprocess mode), chosen here because the value class is fixed at import."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    from prometheus_client import values

    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


async def _parent(opts: ServeOptions, table: RouteTable, children: list[int], metrics_dir: str) -> None:
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    from strangler_proxy.control.admin import build_admin
    from strangler_proxy.control.plane import ControlPlane
    from strangler_proxy.metrics import Metrics
    from strangler_proxy.dataplane.runtime import Runtime
    from strangler_proxy.state import open_store

    store = open_store(opts.shared_state or opts.state)
    runtime = Runtime(table, Metrics(), store.overrides(), asyncio.get_running_loop())
    background = Background(_log)
    # the workers serve traffic and publish their windows; the parent leads the releases,
    # judging each step on the sum of the workers' windows
    plane = ControlPlane(runtime, store, background, opts.state, _log, lead=True)

    def forward_hup() -> None:
        for pid in children:
            os.kill(pid, signal.SIGHUP)

    def reload() -> str | None:
        try:
            new = load_routes(opts.routes)
            check_not_self(new, _own_listeners(opts))
            runtime.swap_table(new)
        except RouteConfigError as exc:
            return str(exc)
        forward_hup()
        return None

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=metrics_dir)  # type: ignore[no-untyped-call]
    servers: list[_Server] = []
    if opts.admin is not None:
        guard = Guard(lambda: runtime.snapshot.table.limits)
        servers.append(_Server(_config(build_admin(runtime, store, operators(opts), reload, background.call, registry,
                                                   controller=plane.controller), guard)))
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()

    def stop() -> None:
        for s in servers:
            s.should_exit = True
        stopped.set()

    loop.add_signal_handler(signal.SIGINT, stop)
    loop.add_signal_handler(signal.SIGTERM, stop)
    loop.add_signal_handler(signal.SIGHUP, forward_hup)

    async def reap() -> None:
        while not stopped.is_set():
            await asyncio.sleep(opts.poll)
            try:
                await plane.tick()
            except Exception as exc:  # never reached by design; if it is, say so and go on
                _log(f"control loop: {type(exc).__name__}: {exc}; it goes on")
            for pid in list(children):
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    _log(f"worker {pid} exited with status {status}; stopping")
                    children.remove(pid)
                    stop()

    _log(f"{opts.workers} workers on http://{opts.listen[0]}:{opts.listen[1]}")
    reaper = loop.create_task(reap())
    if servers:
        await asyncio.gather(*(s.serve(sockets=[bind(*opts.admin, reuse_port=False)]) for s in servers))  # type: ignore[misc]
    await stopped.wait()
    reaper.cancel()
    await plane.close()
    background.close()
    store.close()
