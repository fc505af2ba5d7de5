"""Signed pins: any bytes a client sends as a pin are a pin or no pin, never an error."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from strangler_proxy.dispatch import RequestHead, Routes, plan
from strangler_proxy.model import Match, Module, Pin, RouteTable, Upstream
from strangler_proxy.pins import sign_pin, verify_pin

SECRET = b"s3cret"
UPS = {"legacy": Upstream("legacy", "http", "127.0.0.1", 8080), "svc": Upstream("svc", "http", "127.0.0.1", 9000)}
ROUTES = Routes.of(RouteTable("r.yaml", UPS, (Module("cases", (Match(path_prefix=("/cases",)),), "svc", "canary", 0),),
                              pin=Pin(header="x-strangler-side", cookie="strangler_side", secret=SECRET)))


def test_the_reported_malformed_pins_are_no_pin() -> None:
    for value in ("new.9999999999.\xe9", "new.\xb2.x", "new." + "9" * 5000 + "." + "a" * 32, "new.\u0663\u0663.x",
                  "new.99." + "\xe9" * 32, "", ".", "..", "new..", "new.1.", "new.-1." + "0" * 32):
        assert verify_pin(value, SECRET, 0) is None, value


def test_a_signed_pin_still_works() -> None:
    pin = sign_pin("new", SECRET, 2_000_000_000)
    assert verify_pin(pin, SECRET, 1_900_000_000) == "new"
    assert verify_pin(pin.upper().replace("NEW", "new"), SECRET, 1_900_000_000) == "new"  # hex case does not matter
    head = RequestHead("GET", "/cases/1", "p", [(b"x-strangler-side", pin.encode())], None, None)
    assert plan(ROUTES, head, lambda: 0.9, now=lambda: 1_900_000_000).side == "service"
    assert plan(ROUTES, head, lambda: 0.9, now=lambda: 2_000_000_001).side == "legacy"  # expired: the clock is an input


@settings(max_examples=500)
@given(st.binary(max_size=200), st.binary(max_size=200))
def test_any_bytes_in_the_pin_header_or_cookie_plan_without_error(header: bytes, cookie: bytes) -> None:
    raw = [(b"x-strangler-side", header), (b"cookie", b"strangler_side=" + cookie)]
    head = RequestHead("GET", "/cases/1", "p", raw, "strangler_side=" + cookie.decode("latin-1"), None)
    p = plan(ROUTES, head, lambda: 0.9, now=lambda: 1_900_000_000)
    assert p.side == "legacy"  # weight 0 and no valid signature: never the new side


@settings(max_examples=300)
@given(st.text(max_size=120))
def test_any_text_is_a_pin_or_no_pin(value: str) -> None:
    assert verify_pin(value, SECRET, 0) in (None, value.rpartition(".")[0].rpartition(".")[0])
