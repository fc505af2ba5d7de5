"""Serving: the proxy's processes, one function for every role (``_process``).

``single``: one process serves the data port and the admin API and leads (watches and
validates the route file, runs the release controller). With ``--workers N``, the
``parent`` leads and supervises (``supervisor``) N ``worker`` processes, each serving on
its own SO_REUSEPORT listener (the kernel spreads connections evenly; uvicorn's shared
socket leaves most on one worker) and following the tables the parent accepted. Runtime
changes reach every process through the state store, polled every ``poll`` seconds.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from strangler_common import ConfigError
from strangler_common.oserr import os_reason
from strangler_proxy.config import routes_from_text
from strangler_proxy.model import RouteTable
from strangler_proxy.control.background import Background
from strangler_proxy.control.identity import Operators
from strangler_proxy.errors import ProxyError, RouteConfigError
from strangler_proxy.dataplane.health import DEFAULT_PREFIX, Health
from strangler_proxy.dataplane.listener import Guard, protocol_classes
from strangler_proxy.dataplane.outages import Outages
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
    ready: Callable[[], None] | None = None  # called once the leader's sockets are bound (stores a new admin token)


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
    except FileNotFoundError:
        missing = next((p for p in (cert, key) if p is not None and not p.exists()), cert)
        raise ProxyError(f"{'--tls-key' if missing == key and key != cert else '--tls-cert'} {missing}: no such file") from None
    except (ssl.SSLError, OSError) as exc:
        raise ProxyError(f"--tls-cert {cert}" + (f" --tls-key {key}" if key else "")
                         + f": cannot be loaded as a PEM certificate chain and key: {exc}") from None


def _log(message: str) -> None:
    print(f"strangler proxy [{os.getpid()}]: {message}", file=sys.stderr, flush=True)


class Leader:
    """The one place a new route table is validated and taken: on a change of the file, on
    SIGHUP, on the admin API's reload. A bad file, a table naming the proxy itself, or one
    retiring a module legacy still serves is refused and the previous table stays;
    ``on_accept`` hands an accepted table to the workers (the single process has none)."""

    def __init__(self, opts: ServeOptions, runtime: Any, controller: Any, on_result: Callable[[str], None],
                 on_accept: Callable[[RouteTable, str], None] = lambda table, text: None) -> None:
        self.opts = opts
        self.path = opts.routes
        self.runtime = runtime
        self.controller = controller
        self.on_result = on_result
        self.on_accept = on_accept
        self.stamp = self._stamp()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def validate(self, new: RouteTable) -> None:
        check_not_self(new, _own_listeners(self.opts))
        if self.controller is not None:  # a reload cannot retire a module legacy still serves
            for m in new.modules:
                old = self.runtime.snapshot.modules.get(m.name)
                if m.stage == "retired" and old is not None and old.stage != "retired":
                    refusal = self.controller.retire_refusal(m)
                    if refusal:
                        raise ProxyError(f"{new.source}: module {m.name}: {refusal}")

    def reload(self) -> str | None:
        self.stamp = self._stamp()
        try:
            try:
                text = self.path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ProxyError(f"{self.path}: cannot read file: {os_reason(exc)}") from None
            table = routes_from_text(text, str(self.path))
            self.validate(table)
            self.runtime.swap_table(table)
            self.on_accept(table, text)
        except Exception as exc:  # anything at all: the previous table stays, the watcher lives
            why = str(exc) if isinstance(exc, (RouteConfigError, ProxyError)) else f"{self.path}: {type(exc).__name__}: {exc}"
            _log(f"reload rejected, keeping the previous table: {why}")
            self.on_result("error")
            return why
        self.on_result("ok")
        _log(f"reloaded {self.path}: {len(table.modules)} modules")
        return None

    def changed(self) -> bool:
        return self._stamp() != self.stamp


def _own_listeners(opts: ServeOptions) -> list[tuple[str, tuple[str, int]]]:
    return [("listener", opts.listen)] + ([("admin API", opts.admin)] if opts.admin else [])


def run(opts: ServeOptions) -> int:
    """Serve until a signal asks to stop (exit status 0); any other end is 1."""
    try:
        text = opts.routes.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProxyError(f"{opts.routes}: cannot read file: {os_reason(exc)}") from None
    table = routes_from_text(text, str(opts.routes))  # refuse to start on a bad table
    check_tls_files(opts.tls_cert, opts.tls_key)
    if opts.admin is not None:
        operators(opts)  # a bad tokens file stops the start, with its line
    check_not_self(table, _own_listeners(opts))
    import uvloop

    if opts.workers > 1:
        from strangler_proxy.supervisor import Workers

        workers = Workers(opts, text, _log)
        workers.start_all()
        try:
            asked = uvloop.run(_process(opts, table, "parent", workers=workers))
        finally:
            workers.stop(opts.drain_timeout + 5)  # each worker drains, then is killed
        return 0 if asked and workers.gave_up is None else 1
    helper = spawn(str(opts.state))  # before the bind: the helper must not hold the listener
    listener = bind(*opts.listen, reuse_port=False)
    return 0 if uvloop.run(_process(opts, table, "single", listener, helper)) else 1


def serve_worker(opts: ServeOptions, text: str, rundir: str) -> int:
    """A worker of ``--workers N`` (``python -m strangler_proxy.worker``): the table its
    parent accepted, its own SO_REUSEPORT listener, no admin API, no file watching."""
    import uvloop

    table = routes_from_text(text, str(opts.routes))
    # the mirror helper first: forked after the bind, it would hold the listener open after
    # this worker died, and the connections the kernel queued on it would wait, then reset
    helper = spawn(str(opts.state))
    listener = bind(*opts.listen, reuse_port=True)
    asked = uvloop.run(_process(opts, table, "worker", listener, helper, rundir=rundir))
    return 0 if asked else 1


async def _process(opts: ServeOptions, table: RouteTable, role: str, sock: socket.socket | None = None,
                   helper_proc: tuple[socket.socket, int] | None = None, rundir: str | None = None,
                   workers: Any = None) -> bool:
    """One process of the proxy, whatever its role: ``single`` (serves and leads), ``worker``
    (serves, follows its parent's tables), ``parent`` (leads and supervises ``workers``: the
    admin API, the release controller, the route file). True when a signal asked it to stop.

    The leader is the one that watches and validates the route file (``Leader``); every
    process polls the state store and publishes its traffic (``ControlPlane``)."""
    from strangler_proxy.control.admin import build_admin
    from strangler_proxy.control.plane import ControlPlane
    from strangler_proxy.dataplane.app import ProxyApp
    from strangler_proxy.dataplane.runtime import Runtime
    from strangler_proxy.metrics import Metrics
    from strangler_proxy.shadow.helper import HelperClient
    from strangler_proxy.state import open_store

    serves, leads = role in ("single", "worker"), role in ("single", "parent")
    store = open_store(opts.shared_state or opts.state)
    loop = asyncio.get_running_loop()
    runtime = Runtime(table, Metrics(), store.overrides(), loop, outages=Outages(_log) if serves else None)
    metrics = runtime.metrics
    background = Background(_log)
    # every process publishes its release windows and legacy activity; the one that leads
    # runs the release controller, judging each step on every process's windows
    plane = ControlPlane(runtime, store, background, opts.state, _log, lead=leads)
    controller = plane.controller
    leader = Leader(opts, runtime, controller, lambda r: metrics.reloads.labels(r).inc(),
                    on_accept=workers.accepted if workers is not None else lambda t, x: None) if leads else None

    def follow() -> str | None:
        """A worker takes the table its parent accepted (validated there, so not again)."""
        assert rundir is not None
        try:
            runtime.swap_table(routes_from_text(Path(rundir, "accepted.yaml").read_text(encoding="utf-8"), str(opts.routes)))
        except Exception as exc:  # noqa: BLE001  # the parent accepted it: only a broken run folder gets here
            _log(f"could not take the table the parent accepted: {exc}; keeping the previous one")
            return str(exc)
        metrics.reloads.labels("ok").inc()
        return None

    reload = leader.reload if leader is not None else follow
    servers: list[tuple[_Server, socket.socket]] = []
    helper = health = None
    if serves:
        assert sock is not None and helper_proc is not None

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
        app = ProxyApp(runtime, mirror=helper, windows=plane.windows, activity=plane.activity, traffic=plane.traffic,
                       access_log=_access_logger() if opts.access_log else None, health=health)
        guard = Guard(lambda: runtime.snapshot.table.limits, lambda reason: metrics.client_closed.labels(reason).inc())
        servers.append((_Server(_config(app, guard, opts)), sock))
    if leads and opts.admin is not None:
        registry = None
        if workers is not None:  # the workers' metrics, from the files they write
            from prometheus_client import CollectorRegistry
            from prometheus_client.multiprocess import MultiProcessCollector

            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=workers.metrics_dir)  # type: ignore[no-untyped-call]
        admin_guard = Guard(lambda: runtime.snapshot.table.limits, lambda reason: metrics.client_closed.labels(reason).inc())
        admin = build_admin(runtime, store, operators(opts), reload, background.call, registry, controller=controller,
                            shadow_state=opts.state, estate_file=Path(opts.state).parent / "estate.json")
        try:
            admin_sock = bind(*opts.admin, reuse_port=False)
        except ProxyError as exc:
            raise ProxyError(f"{exc} (the admin API; another proxy may run there: choose another with --admin HOST:PORT, "
                             "or --admin off)") from None
        servers.append((_Server(_config(admin, admin_guard)), admin_sock))

    stopping = asyncio.Event()
    asked = False

    def stop() -> None:
        nonlocal asked
        asked = True
        stopping.set()

    # ours before anyone can know the proxy is up: a SIGTERM sent as soon as the token file
    # appears is a clean stop (exit 0), never the default action's death by signal
    loop.add_signal_handler(signal.SIGINT, stop)
    loop.add_signal_handler(signal.SIGTERM, stop)
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(background.step("route reload", reload)))
    if leads and opts.ready is not None:
        opts.ready()  # every socket is bound: the start can no longer be refused for its inputs

    async def drain() -> None:
        await stopping.wait()
        if health is not None:
            health.draining = True
        if serves:
            _log(f"stopping: no new connections; in-flight requests have {opts.drain_timeout:g} s to finish")
        for server, _ in servers:
            server.should_exit = True

    async def watch() -> None:
        """The control plane's heartbeat: every step off the loop, none able to end it."""
        while not stopping.is_set():
            await asyncio.sleep(opts.poll if workers is None else min(opts.poll, 0.2))
            try:
                if workers is not None:
                    await workers.reap(stopping)  # a crash loop sets stopping
                await plane.tick()
                if leader is not None and leader.changed():  # only the leader watches the file
                    await background.step("route reload", leader.reload)
            except Exception as exc:  # never reached by design; if it is, say so and go on
                _log(f"control loop: {type(exc).__name__}: {exc}; it goes on")

    tasks = [loop.create_task(watch()), loop.create_task(drain())]
    if workers is not None:
        _log(f"{opts.workers} workers on http://{opts.listen[0]}:{opts.listen[1]}"
             + (f", admin on http://{opts.admin[0]}:{opts.admin[1]}" if opts.admin else ""))
    else:
        _log(f"listening on {'https' if opts.tls_cert else 'http'}://{opts.listen[0]}:{opts.listen[1]}" + (
            f", admin on http://{opts.admin[0]}:{opts.admin[1]}" if leads and opts.admin else ""))
    try:
        if servers:
            await asyncio.gather(*(server.serve(sockets=[s]) for server, s in servers))
        else:
            await stopping.wait()
    finally:
        for task in tasks:
            task.cancel()
        if helper is not None:
            helper.close()
        await plane.close()
        background.close()
        runtime.close()
        store.close()
        if workers is None:
            _log("stopped" if asked else "stopped without being asked to")
    return asked


def _access_logger() -> Callable[[dict[str, Any]], None]:
    out = sys.stdout

    def log(entry: dict[str, Any]) -> None:
        out.write(json.dumps(entry, separators=(",", ":")) + "\n")

    return log
