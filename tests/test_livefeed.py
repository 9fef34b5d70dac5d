"""A subscription hands its socket whole batches, in order, with markers in their place, and
bounds what may wait (api/livefeed.py). Pure: no servers."""

from __future__ import annotations

import threading
import time

from api.livefeed import Subscription, encode
from core.ground.models import Event


def _frames(first: int, n: int) -> list:
    return [encode(Event(id=f"{i}-0", type="message", data={"seq": i}))
            for i in range(first, first + n)]


def test_batches_and_markers_come_out_in_the_order_delivered() -> None:
    sub = Subscription("disc_a", limit=10)
    sub.offer_frames(_frames(1, 2))
    sub.offer(None)
    sub.offer_frames(_frames(3, 1))
    items = sub.take(1.0)
    assert [getattr(i, "key", i) for i in items] == [(1, 0), (2, 0), None, (3, 0)]
    assert sub.take(0.05) == []  # everything was taken: nothing is handed out twice


def test_more_waiting_frames_than_the_limit_mark_the_viewer_too_slow() -> None:
    sub = Subscription("disc_a", limit=5)
    sub.offer_frames(_frames(1, 3))
    assert not sub.overflowed
    sub.offer_frames(_frames(4, 3))  # 6 would wait
    assert sub.overflowed
    assert [f.key[0] for f in sub.take(1.0)] == [1, 2, 3]  # the batch over the limit is not kept
    sub.offer_frames(_frames(7, 1))
    assert sub.take(0.05) == []  # nothing more is queued for an overflowed viewer


def test_taking_frees_room_and_a_waiting_taker_wakes_on_delivery() -> None:
    sub = Subscription("disc_a", limit=3)
    sub.offer_frames(_frames(1, 3))
    assert len(sub.take(1.0)) == 3
    got: list = []
    taker = threading.Thread(target=lambda: got.extend(sub.take(5.0)))
    taker.start()
    time.sleep(0.05)
    started = time.monotonic()
    sub.offer_frames(_frames(4, 3))  # room again: what waited was taken
    taker.join(5)
    assert time.monotonic() - started < 1.0
    assert [f.key[0] for f in got] == [4, 5, 6]
    assert not sub.overflowed


def test_end_wakes_the_socket_with_the_reason_set() -> None:
    sub = Subscription("disc_a", limit=3)
    sub.end("credentials revoked")
    assert sub.take(1.0) == [None]
    assert sub.ended == "credentials revoked"
