"""The floor of an ASGI proxy on uvicorn, for the benchmark only: uvicorn configured as
strangler configures it (httptools, uvloop, no access log, no Server or Date header) with
an ASGI app that answers the benchmark's body itself, talking to no upstream at all.

    python loadtests/asgi_floor.py PORT               uvicorn's own HTTP protocol
    python loadtests/asgi_floor.py --listener PORT    strangler's listener (its hardening) in front

Whatever a proxy on uvicorn does for a request, it does at least this: what this costs per
request bounds that proxy's throughput from above. ``bench_relay.py`` measures it beside the
relay (a whole proxy without ASGI) and strangler. Never deploy it.
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

BODY = b'{"ok":true,"module":"cases","items":[1,2,3]}'
START = {"type": "http.response.start", "status": 200,
         "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(BODY))]}
ANSWER = {"type": "http.response.body", "body": BODY}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send(START)
        await send(ANSWER)


def main(argv: list[str]) -> None:
    listener = argv[:1] == ["--listener"]
    port = int(argv[-1])
    http: Any = "httptools"
    if listener:
        from strangler_proxy import Guard, Limits, protocol_classes

        limits = Limits()
        http, _ = protocol_classes(Guard(lambda: limits))
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http=http, ws="none", lifespan="off", access_log=False,
                server_header=False, date_header=False, log_level="warning", backlog=2048, interface="asgi3")


if __name__ == "__main__":
    main(sys.argv[1:])
