"""Readers for what teams already have; ``load_estate`` detects, reads and merges them."""

from strangler_analyzer.importers.loader import load_estate

__all__ = ["load_estate"]
