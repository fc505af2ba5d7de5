"""Run the installed ``strangler`` command as a user would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

BIN = shutil.which("strangler", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))


def strangler(*args: str, cwd: Path | None = None, timeout: float = 60,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed command; ``env`` adds variables to the inherited environment."""
    assert BIN, "the strangler command is not installed (pip install -e .)"
    return subprocess.run([BIN, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          env={**os.environ, **env} if env else None)
