"""Pieces shared by the analyzer and the proxy: the error root and YAML loading with marks.

Imports point one way: ``strangler_cli`` -> ``strangler_analyzer`` / ``strangler_proxy``
-> ``strangler_common``. Nothing here imports either of them.
"""

from strangler_common.errors import UsageError, ConfigError, Location, StranglerError
from strangler_common.reader import Node
from strangler_common.yamlio import MarkedList, MarkedMap, load_yaml_documents, load_yaml_file

__all__ = [
    "UsageError",
    "ConfigError",
    "Location",
    "MarkedList",
    "MarkedMap",
    "Node",
    "StranglerError",
    "load_yaml_documents",
    "load_yaml_file",
]
