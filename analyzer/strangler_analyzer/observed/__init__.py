"""Observed dependencies: connections seen on hosts (``strangler observe``, ``ss``/``netstat``
captures, Azure Migrate's dependency export) and calls seen by tracing (Zipkin/Jaeger
dependency links, the OpenTelemetry service graph), read into ``Flow`` values and merged
with what is declared and configured (``mapping``)."""

from strangler_analyzer.observed.flows import Flow, Peer
from strangler_analyzer.observed.readers import detect, read_observations

__all__ = ["Flow", "Peer", "detect", "read_observations"]
