"""The part nginx and HAProxy share: a configuration file strangler writes, checks with the
plane's own test (``nginx -t``, ``haproxy -c``) and reloads; a refused check or reload puts
the previous file back (and reloads it), so the plane keeps its last good configuration.
An unchanged configuration is not applied again (nor after a restart of strangler).

Every method runs on the control thread (``Background``); none touches the event loop.
"""

from __future__ import annotations

import difflib
import os
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from strangler_proxy.external import DataPlane
from strangler_proxy.model import RouteTable
from strangler_proxy.planes.base import ApplyFailed, Change

__all__ = ["FilePlane", "COMMAND_TIMEOUT"]

COMMAND_TIMEOUT = 60.0


def _run(argv: tuple[str, ...], what: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ApplyFailed(f"{what} ({' '.join(argv)}): {exc}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise ApplyFailed(f"{what} ({' '.join(argv)}) exited {done.returncode}: {' / '.join(tail)}")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.strangler-new")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class FilePlane:
    """A plane configured by one file (``render``: the export); subclasses give ``read``."""

    def __init__(self, spec: DataPlane, log: Callable[[str], None], render: Callable[[RouteTable], str]) -> None:
        assert spec.config is not None
        self.spec = spec
        self.log = log
        self.path = Path(spec.config)
        self.applied: str | None = None  # the configuration last applied
        self._render = render

    def render(self, table: RouteTable) -> str:
        return self._render(replace(table, data_plane=self.spec))  # the block read at start, whatever a reload says

    def plan(self, table: RouteTable) -> Change:
        text, current = self.render(table), _read(self.path)
        if current == text:
            return Change()
        diff = "".join(difflib.unified_diff((current or "").splitlines(True), text.splitlines(True),
                                            str(self.path), f"{self.path} (new)"))
        return Change(create=(str(self.path),), diff=diff) if current is None else Change(update=(str(self.path),), diff=diff)

    def apply(self, table: RouteTable) -> bool:
        text = self.render(table)
        if self.applied is None and _read(self.path) == text:
            self.applied = text  # the plane already runs it (strangler restarted): no reload
        if text == self.applied:
            return False
        previous = _read(self.path)
        _write(self.path, text)
        try:
            _run(self.spec.test, "the data plane's check")
            _run(self.spec.reload, "the data plane's reload")
        except ApplyFailed:
            if previous is None:
                self.path.unlink(missing_ok=True)
            else:
                _write(self.path, previous)
                try:
                    _run(self.spec.reload, "reloading the previous configuration")
                except ApplyFailed as again:
                    self.log(f"data plane: {again}")
            raise
        self.applied = text
        return True
