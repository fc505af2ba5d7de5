from __future__ import annotations

import gzip
import json
import time

from strangler_proxy.shadow.compare import Response, Rules, compare


def js(body: object, status: int = 200, **headers: str) -> Response:
    hs = (("content-type", "application/json"), *headers.items())
    return Response(status, tuple(hs), json.dumps(body).encode())


def kinds(a: Response, b: Response, rules: Rules = Rules()) -> set[tuple[str, str]]:
    return {(d.path, d.kind) for d in compare(a, b, rules)}


def test_json_key_order_ignored_values_compared_by_path() -> None:
    a = js({"a": 1, "b": {"c": [1, 2], "d": "x"}})
    assert kinds(a, Response(200, (("content-type", "application/json"),), b'{"b":{"d":"x","c":[1,2]},"a":1}')) == set()
    assert kinds(a, js({"a": 2, "b": {"c": [1, 2]}, "e": None})) == {("/a", "value"), ("/b/d", "missing"), ("/e", "extra")}
    assert kinds(js({"n": 1}), js({"n": "1"})) == {("/n", "type")}


def test_array_reorder_is_its_own_kind_and_unordered_paths_ignore_it() -> None:
    a, b = js({"tags": ["x", "y", "z"]}), js({"tags": ["z", "x", "y"]})
    assert kinds(a, b) == {("/tags", "order")}
    assert kinds(a, b, Rules(unordered=("/tags",))) == set()
    assert kinds(js({"items": [{"id": 1}, {"id": 2}]}), js({"items": [{"id": 1}, {"id": 3}]})) == {("/items/*/id", "value")}
    assert kinds(js({"l": [1, 2]}), js({"l": [1, 2, 3]})) == {("/l", "length")}


def test_ignore_paths_and_numeric_tolerance() -> None:
    a = js({"meta": {"ts": 1, "host": "a"}, "items": [{"id": 1, "v": 1.0}]})
    b = js({"meta": {"ts": 2, "host": "b"}, "items": [{"id": 9, "v": 1.004}]})
    assert kinds(a, b, Rules(ignore=("/meta/*", "/items/*/id"), tolerance=0.01)) == set()
    assert kinds(a, b, Rules(ignore=("/meta",))) == {("/items/*/id", "value"), ("/items/*/v", "value")}


def test_status_headers_text_and_hash() -> None:
    text = (("content-type", "text/html"),)
    assert kinds(Response(200, text, b"<p>a  b</p>\n"), Response(200, text, b"<p>a b</p>")) == set()
    assert kinds(Response(200, text, b"<p>a</p>"), Response(200, text, b"<p>b</p>")) == {("body", "text")}
    assert kinds(Response(200, (), b"\x00\x01"), Response(200, (), b"\x00\x02")) == {("body", "hash")}
    assert ("status", "status") in kinds(js({}), js({}, 500))
    a = js({}, **{"date": "x", "server": "a", "cache-control": "no-store", "set-cookie": "s=1"})
    b = js({}, **{"date": "y", "server": "b", "cache-control": "max-age=60", "set-cookie": "s=2"})
    assert kinds(a, b) == {("header:cache-control", "header")}  # date/server ignored, cookie values ignored


def test_bad_bodies_are_mismatches_of_the_right_kind_never_exceptions() -> None:
    ct = (("content-type", "application/json"),)
    good = Response(200, ct, b'{"a": 1}')
    assert kinds(good, Response(200, ct, b"<html>oops")) == {("body", "invalid_json")}
    assert kinds(good, Response(200, ct, b'{"a": "\xff"}')) == {("body", "invalid_utf8")}
    assert kinds(good, Response(200, ct, b'{"a"', complete=False)) == {("response", "truncated")}
    assert kinds(good, Response(0, (), b"", False, "connection closed")) == {("response", "error")}
    txt = (("content-type", "text/plain"),)
    assert kinds(Response(200, txt, b"ok"), Response(200, txt, b"\xff\xfe")) == {("body", "invalid_utf8")}


def test_compressed_bodies_compared_after_decoding() -> None:
    plain = js({"a": 1})
    zipped = Response(200, (("content-type", "application/json"), ("content-encoding", "gzip")), gzip.compress(b'{"a": 1}'))
    assert kinds(plain, zipped) == {("header:content-encoding", "extra")}
    broken = Response(200, zipped.headers, b"\x1f\x8b garbage")
    assert ("body", "truncated") in kinds(zipped, broken)


def test_normalisation_hook() -> None:
    def drop_version(side: str, r: Response) -> Response:
        doc = json.loads(r.body)
        doc.pop("version", None)
        return Response(r.status, r.headers, json.dumps(doc).encode())

    assert kinds(js({"a": 1, "version": 1}), js({"a": 1, "version": 2}), Rules(normalize=drop_version)) == set()


def test_a_100_kib_pair_compares_quickly() -> None:
    doc = {"items": [{"id": i, "name": f"case {i}", "tags": ["a", "b"], "price": i * 1.5} for i in range(1500)]}
    a = js(doc)
    other = json.loads(json.dumps(doc))
    other["items"][500]["price"] = -1
    b = js(other)
    assert len(a.body) > 100 * 1024
    start = time.perf_counter()
    assert kinds(a, b) == {("/items/*/price", "value")}
    # generous: the benchmark's figure is the real one; this only catches an accidental blow-up
    assert time.perf_counter() - start < 1.0


def test_bool_and_number_swaps_are_found_despite_fast_equality() -> None:
    # Python holds True == 1: the comparison must still see a changed JSON type
    assert kinds(js({"a": {"on": True}, "b": [1]}), js({"a": {"on": 1}, "b": [1]})) == {("/a/on", "type")}
    assert kinds(js({"x": [True, 0]}), js({"x": [1, False]})) == {("/x/*", "type")}


def test_a_decompression_bomb_is_never_decoded_whole() -> None:
    """1 MiB of gzip that inflates to 1 GiB: refused after the cap, memory stays flat."""
    import resource
    import zlib

    import pytest

    from strangler_proxy.shadow.compare import TooLarge

    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    bomb = b"".join(z.compress(block) for _ in range(1024)) + z.flush()
    assert len(bomb) < 2 << 20
    headers = (("content-type", "application/json"), ("content-encoding", "gzip"))
    legacy = Response(200, headers, bomb)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(TooLarge):
        compare(legacy, Response(200, headers, bomb), cap=1 << 20)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 * 1024  # KiB: far below the 1 GiB it inflates to
    small = gzip.compress(b'{"a": 1}')
    assert compare(Response(200, headers, small), Response(200, headers, gzip.compress(b'{"a": 2}')), cap=1 << 20)
