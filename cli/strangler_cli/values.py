"""Argument values shared by several commands."""

from __future__ import annotations

import argparse
import re


def duration(text: str) -> float:
    """Seconds from ``45``, ``60s``, ``2m`` or ``1h``."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m|h)?", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"expected a duration such as 60s, 2m or 45, found {text!r}")
    return float(m[1]) * {"s": 1, "m": 60, "h": 3600, None: 1}[m[2]]
