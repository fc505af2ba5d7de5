"""Writing a result to stdout or a file without losing the previous file on failure."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from strangler_common import StranglerError


def write_output(text: str, output: str | None) -> None:
    if output is None or output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    target = Path(output)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", prefix=f".{target.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    except OSError as exc:
        raise StranglerError(f"{output}: cannot write: {exc.strerror}") from None
