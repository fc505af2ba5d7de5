"""A worker of ``strangler proxy --workers N``, started by its parent (``supervisor``): its
options and the accepted route file arrive as JSON on standard input."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from strangler_proxy.errors import ProxyError
from strangler_proxy.serve import ServeOptions, serve_worker

PATHS = {"routes", "state", "tls_cert", "tls_key", "tokens_file"}
PAIRS = {"listen", "admin"}


def main() -> int:
    data = json.loads(sys.stdin.read())
    raw = data["options"]
    fields: dict[str, Any] = {k: (Path(v) if k in PATHS and v is not None else tuple(v) if k in PAIRS and v is not None else v)
              for k, v in raw.items()}
    try:
        return serve_worker(ServeOptions(**fields), data["text"], data["rundir"])
    except ProxyError as exc:
        print(f"strangler proxy worker: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
