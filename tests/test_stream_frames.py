"""Live frames written as prebuilt bytes (api.hub.text_frame) for viewers without extensions,
and through wsproto for viewers that negotiated compression: both get the same events."""

from __future__ import annotations

import json

import pytest
import requests
from websockets.sync.client import connect
from wsproto.connection import Connection, ConnectionType
from wsproto.events import TextMessage

from api.hub import text_frame
from tests.helpers import agent_body
from tests.test_stream import ws_url


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65_535, 65_536, 200_000])
def test_a_prebuilt_frame_is_what_wsproto_would_send(size: int) -> None:
    text = "é" * (size // 2) + "x" * (size % 2)  # multi-byte UTF-8: lengths count bytes
    wsproto = Connection(ConnectionType.SERVER).send(TextMessage(data=text))
    assert text_frame(text.encode()) == wsproto


def _events(url: str, compression: str | None) -> tuple[list[dict], list[str]]:
    frames = []
    with connect(url, compression=compression, open_timeout=10) as ws:
        extensions = [type(e).__name__ for e in ws.protocol.extensions]
        while True:
            frame = json.loads(ws.recv(timeout=30))
            frames.append(frame)
            if frame["type"] == "status" and frame["data"]["status"] in ("completed", "failed"):
                return frames, extensions


@pytest.mark.parametrize("compression", [None, "deflate"])
def test_viewers_with_and_without_compression_get_every_event(live_server: str,
                                                              compression: str | None) -> None:
    resp = requests.post(f"{live_server}/v1/discussions", json=agent_body(3, 3, latency_ms=50),
                         timeout=5)
    did = resp.json()["id"]
    frames, extensions = _events(ws_url(live_server, did), compression)
    # The server accepted compression only when offered: the raw path is the other one.
    assert bool(extensions) == (compression == "deflate")
    init, live = frames[0], [f for f in frames[1:] if "id" in f]
    assert init["type"] == "init"
    seqs = [m["seq"] for m in init["data"]["messages"]] + [
        f["data"]["seq"] for f in live if f["type"] == "message"]
    assert seqs == list(range(1, 10))
    ids = [tuple(map(int, f["id"].split("-"))) for f in live]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
