"""The examples in docstrings run, so they stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "strangler_common.yamlio", "strangler_common.reader", "strangler_analyzer",
    "strangler_analyzer.importers.connstrings", "strangler_analyzer.analysis.waves",
    "strangler_analyzer.startup.checks", "strangler_proxy", "strangler_proxy.cohort",
    "strangler_proxy.shadow.evidence",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
