"""Writing a result to stdout or a file without losing the previous file on failure."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path

from strangler_common import StranglerError
from strangler_common.oserr import os_reason


def _mode(target: Path) -> int:
    """The new file's mode: the old file's, or what the umask gives a new file (mkstemp's
    own 0600 would hide a report from the team reading it)."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_output(text: str, output: str | None) -> None:
    if output is None or output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    target = Path(output)
    if target.is_dir():
        raise StranglerError(f"{output}: it is a directory; name a file to write")
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", prefix=f".{target.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, _mode(target))
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise StranglerError(f"{output}: cannot write: {os_reason(exc)}") from None
    finally:
        if tmp is not None:  # never a hidden half-written file left behind
            Path(tmp).unlink(missing_ok=True)
