"""The data plane: the ASGI app, its listener, upstream connections, bodies and WebSockets.

Only I/O: every routing decision comes from ``strangler_proxy.dispatch``.
"""
