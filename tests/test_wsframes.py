"""Whole frames or none (api/wsframes.py) on a real socket pair whose reader stops reading."""

from __future__ import annotations

import socket
import threading

import pytest

from api.wsframes import FrameSocket


def _pair() -> tuple[socket.socket, socket.socket]:
    server, client = socket.socketpair()
    # Small buffers, so a few frames fill them (the kernel may round these up).
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return server, client


def _drain(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_plain_send_with_a_timeout_writes_part_of_a_frame_and_says_nothing() -> None:
    # The cause of the corrupt frames: what simple-websocket does with a send timeout set.
    server, client = _pair()
    server.settimeout(0.3)
    frame = b"F" * 1_000_000  # more than both buffers hold
    assert server.send(frame) < len(frame)  # no error: the rest is simply not sent
    server.close()
    client.close()


def test_a_send_that_times_out_part_way_cuts_the_connection() -> None:
    server, client = _pair()
    framed = FrameSocket(server, timeout_s=0.3)
    frame = b"F" * 1_000_000
    with pytest.raises(TimeoutError):
        framed.send(frame)
    assert framed.broken
    with pytest.raises(BrokenPipeError):  # nothing may follow the fragment, not even a close
        framed.send(b"close")
    data = _drain(client)  # the fragment, then the end of the connection
    assert 0 < len(data) < len(frame) and set(data) == {ord("F")}
    server.close()
    client.close()


def test_whole_frames_from_many_threads_never_interleave() -> None:
    server, client = _pair()
    framed = FrameSocket(server, timeout_s=10)
    frames = {bytes([65 + i]) * 5000 for i in range(8)}
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(_drain(client)))
    reader.start()
    threads = [threading.Thread(target=framed.send, args=(f,)) for f in frames]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    server.shutdown(socket.SHUT_WR)
    reader.join()
    data = received[0]
    assert {data[i:i + 5000] for i in range(0, len(data), 5000)} == frames
    server.close()
    client.close()
