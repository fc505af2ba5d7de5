"""What every external data plane is to the control plane: render a table, apply it (checked,
the last good configuration kept on refusal), read back the traffic it carried.

A ``Plane`` per provider, each in its own module with everything about it (its renderer,
its apply and its evidence): ``nginx``, ``haproxy``, ``kubernetes``. ``open_plane`` picks
one for the route file's ``data_plane:`` block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from strangler_proxy.errors import ProxyError
from strangler_proxy.external import DataPlane
from strangler_proxy.model import RouteTable

__all__ = ["ApplyFailed", "Change", "Observation", "Plane"]


@dataclass(frozen=True, slots=True)
class Observation:
    """Traffic the plane carried for one side of one module (``count`` requests alike)."""

    module: str
    side: str  # "service" or "legacy"
    seconds: float
    error: bool
    count: int = 1


@dataclass(frozen=True, slots=True)
class Change:
    """What applying a table would do (a dry run): objects or files created, changed, removed."""

    create: tuple[str, ...] = ()
    update: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    diff: str = ""  # a unified diff of the configuration, for file planes

    @property
    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)


class ApplyFailed(ProxyError):
    """The data plane refused the new configuration; it still runs the previous one."""


class Plane(Protocol):
    spec: DataPlane

    def render(self, table: RouteTable) -> str:
        """The plane's configuration for ``table`` (overrides applied)."""

    def plan(self, table: RouteTable) -> Change:
        """What ``apply`` would change, changing nothing."""

    def apply(self, table: RouteTable) -> bool:
        """Make the plane carry ``table``; False when it already did. ``ApplyFailed`` when
        the plane refuses it (it keeps its previous configuration)."""

    def read(self, table: RouteTable) -> list[Observation]:
        """What the plane carried since the last read."""
