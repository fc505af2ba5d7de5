"""The ``strangler`` command: the only package that sees both the analyzer and the proxy."""
