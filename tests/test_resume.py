"""Resume and fan-out on a real server: exact backlogs, `resume` frames, resync, slow viewers.

Events are written with the store's commit (the path API posts take), so no worker is needed
and every expected id can be read back from the stream.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import redis
import websocket
from werkzeug.serving import make_server

from api.extension import HUB_CLIENT_NAME
from core.ground.clock import iso
from core.ground.models import Message, ParticipantType, Status
from core.ground.settings import Settings
from core.storage.store import Commit, Store
from tests.helpers import agent, config, human, wait_for


@pytest.fixture
def tuned(settings: Settings) -> Settings:
    return settings.model_copy(update={"events_maxlen": 100, "ws_viewer_queue": 200,
                                       "ws_send_timeout_s": 2.0, "ws_max_frame_bytes": 4096})


def _serve(s: Settings, r: redis.Redis) -> Iterator[tuple[str, object]]:
    from api import create_app

    app = create_app({"TESTING": True}, settings=s, redis_client=r, dispatch=lambda d: None)
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"ws://127.0.0.1:{srv.server_port}", app
    app.extensions["orchestrator"].hub.stop()
    srv.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def server(tuned: Settings, r: redis.Redis) -> Iterator[tuple[str, object]]:
    yield from _serve(tuned, r)


@pytest.fixture
def pinging_server(tuned: Settings, r: redis.Redis) -> Iterator[tuple[str, object]]:
    yield from _serve(tuned.model_copy(update={"ws_ping_interval_s": 0.5}), r)


@pytest.fixture
def st(r: redis.Redis, tuned: Settings) -> Store:
    return Store(r, events_maxlen=tuned.events_maxlen)


def _discussion(st: Store, did: str = "disc_test") -> str:
    c = config().model_copy(update={"id": did})
    st.create(c, [agent("a1"), human("h1", "john")], status=Status.ACTIVE)
    return did


def _post(st: Store, did: str, n: int, size: int = 20) -> None:
    for i in range(n):
        st.commit(did, Commit(message=Message(
            message_id=f"msg_{time.monotonic_ns()}", participant_id="h1", participant_name="John",
            participant_type=ParticipantType.HUMAN, content=f"{i} " + "x" * size,
            timestamp=iso())))


def _connect(base: str, did: str, query: str = "", **kw: object) -> websocket.WebSocket:
    return websocket.create_connection(f"{base}/v1/discussions/{did}/stream{query}", timeout=10,
                                       **kw)


def _frames(ws: websocket.WebSocket, n: int) -> list[dict]:
    out = []
    while len(out) < n:
        frame = json.loads(ws.recv())
        if frame.get("type") not in ("pong",):
            out.append(frame)
    return out


def test_reconnect_with_last_id_gets_exactly_the_events_missed(
        server: tuple[str, object], st: Store) -> None:
    base, _ = server
    did = _discussion(st)
    ws = _connect(base, did)
    init = json.loads(ws.recv())
    assert init["type"] == "init" and init["id"] == init["data"]["last_event_id"]
    _post(st, did, 5)
    seen = _frames(ws, 5)
    ws.close()
    last = seen[-1]["id"]
    _post(st, did, 30)  # happens while the viewer is away
    missed = [e.id for e in st.events_after(did, last)]
    ws = _connect(base, did, f"?last_event_id={last}")
    try:
        backlog = _frames(ws, len(missed))
        assert [f["id"] for f in backlog] == missed  # exactly those, in order
        _post(st, did, 3)
        live = _frames(ws, 3)
        assert [f["id"] for f in live] == [e.id for e in st.events_after(did, missed[-1])]
        assert [f["data"]["seq"] for f in backlog + live] == list(range(6, 39))
    finally:
        ws.close()


def test_resume_frame_on_an_open_socket_replays_then_continues_live(
        server: tuple[str, object], st: Store) -> None:
    base, _ = server
    did = _discussion(st)
    ws = _connect(base, did)
    try:
        json.loads(ws.recv())
        _post(st, did, 10)
        first = _frames(ws, 10)
        ws.send(json.dumps({"type": "resume", "last_event_id": first[2]["id"]}))
        replay = _frames(ws, 7)
        assert [f["id"] for f in replay] == [f["id"] for f in first[3:]]
        _post(st, did, 2)
        live = _frames(ws, 2)
        assert [f["data"]["seq"] for f in live] == [11, 12]  # nothing repeated after the replay
    finally:
        ws.close()


@pytest.mark.parametrize("frame", [
    {"type": "resume"},
    {"type": "resume", "last_event_id": "abc"},
    {"type": "resume", "last_event_id": 12},
    {"type": "resume", "last_event_id": "1-2-3"},
])
def test_bad_resume_frames_get_an_error_and_the_socket_lives(
        server: tuple[str, object], st: Store, frame: dict) -> None:
    base, _ = server
    did = _discussion(st)
    ws = _connect(base, did)
    try:
        json.loads(ws.recv())
        ws.send(json.dumps(frame))
        reply = json.loads(ws.recv())
        assert reply["type"] == "error" and "last_event_id" in reply["data"]["message"]
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv()) == {"type": "pong"}
    finally:
        ws.close()


def test_malformed_last_event_id_in_the_query_gets_an_error_then_init(
        server: tuple[str, object], st: Store) -> None:
    base, _ = server
    did = _discussion(st)
    ws = _connect(base, did, "?last_event_id=garbage")
    try:
        assert json.loads(ws.recv())["type"] == "error"
        assert json.loads(ws.recv())["type"] == "init"
    finally:
        ws.close()


def test_an_id_older_than_retention_gets_resync_required_then_a_fresh_init(
        server: tuple[str, object], st: Store, r: redis.Redis) -> None:
    base, _ = server
    did = _discussion(st)
    created = st.first_event_id(did)
    assert created is not None
    _post(st, did, 600)  # MAXLEN ~100: the oldest entries are trimmed
    assert st.first_event_id(did) != created
    for how in ("query", "frame"):
        if how == "query":
            ws = _connect(base, did, f"?last_event_id={created}")
        else:
            ws = _connect(base, did)
            assert json.loads(ws.recv())["type"] == "init"
            ws.send(json.dumps({"type": "resume", "last_event_id": created}))
        try:
            resync = json.loads(ws.recv())
            assert resync["type"] == "resync_required", how
            assert resync["data"]["first_retained_id"] == st.first_event_id(did)
            init = json.loads(ws.recv())
            assert init["type"] == "init"
            assert init["data"]["last_event_id"] == st.last_event_id(did)
            assert init["data"]["session"]["message_count"] == 600
        finally:
            ws.close()


def test_a_retained_old_id_is_not_a_resync(server: tuple[str, object], st: Store) -> None:
    base, _ = server
    did = _discussion(st)
    created = st.first_event_id(did)
    _post(st, did, 20)
    ws = _connect(base, did, f"?last_event_id={created}")
    try:
        frames = _frames(ws, 20)
        assert [f["type"] for f in frames] == ["message"] * 20
    finally:
        ws.close()


def test_one_stream_reader_per_process_whatever_the_viewers(
        server: tuple[str, object], st: Store, r: redis.Redis) -> None:
    base, app = server
    dids = [_discussion(st, f"disc_{i}") for i in range(4)]

    def hubs() -> int:
        return sum(1 for c in r.client_list() if c.get("name") == HUB_CLIENT_NAME)

    # Other tests' servers may still run their own hubs in this process: count the change.
    hubs_before, clients_before = hubs(), len(r.client_list())
    sockets = [(_connect(base, did), did) for did in dids for _ in range(10)]
    try:
        for ws, _ in sockets:
            assert json.loads(ws.recv())["type"] == "init"
        hub = app.extensions["orchestrator"].hub
        wait_for(lambda: hub.viewer_count() == 40)
        assert hubs() - hubs_before <= 1  # one reader for 40 viewers of 4 discussions
        # Connections do not grow with viewers: the hub plus the pooled ones that served the
        # 40 concurrent handshakes, far fewer than one per viewer.
        assert len(r.client_list()) - clients_before < 20
        for did in dids:
            _post(st, did, 3)
        for ws, did in sockets:
            got = _frames(ws, 3)
            assert [f["id"] for f in got] == [e.id for e in st.events_after(did, "0")][-3:]
    finally:
        for ws, _ in sockets:
            ws.close()


def test_a_slow_viewer_is_dropped_and_never_delays_the_others(
        server: tuple[str, object], st: Store) -> None:
    base, app = server
    did = _discussion(st)
    hub = app.extensions["orchestrator"].hub
    fast = _connect(base, did)
    # The slow viewer reads nothing after init, with a tiny receive buffer.
    slow = _connect(base, did, sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
    assert json.loads(fast.recv())["type"] == "init"
    assert json.loads(slow.recv())["type"] == "init"
    wait_for(lambda: hub.viewer_count() == 2)
    received: list[int] = []

    def read_fast() -> None:
        while len(received) < 1500:
            frame = json.loads(fast.recv())
            if frame.get("type") == "message":
                received.append(frame["data"]["seq"])

    reader = threading.Thread(target=read_fast, daemon=True)
    reader.start()
    started = time.monotonic()
    for _ in range(150):  # 1,500 messages of 4 KB, paced at about 500 a second
        _post(st, did, 10, size=4096)
        time.sleep(0.02)
    reader.join(timeout=60)
    assert received == list(range(1, 1501))  # the fast viewer got everything, once, in order
    wait_for(lambda: hub.viewer_count() == 1, timeout=20)  # the slow one was dropped
    dropped_after = time.monotonic() - started
    # When it finally reads, the slow viewer finds its buffered frames and then the end.
    slow.settimeout(10)
    code = None
    try:
        while True:
            opcode, data = slow.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                code = int.from_bytes(data[:2], "big")
                break
    except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
        pass
    finally:
        slow.close()
        fast.close()
    assert code in (4008, None), code  # the reason when the close frame could still be sent
    assert dropped_after < 40


def _close_code(ws: websocket.WebSocket) -> int | None:
    try:
        while True:
            opcode, data = ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return int.from_bytes(data[:2], "big") if data else None
    except (websocket.WebSocketException, OSError):
        return None


def test_a_frame_over_the_size_limit_closes_the_socket(
        server: tuple[str, object], st: Store) -> None:
    base, app = server
    did = _discussion(st)
    ws = _connect(base, did)
    try:
        assert json.loads(ws.recv())["type"] == "init"
        ws.send(json.dumps({"type": "ping", "pad": "x" * 5000}))
        # 1009, message too big (unless the server's reset overtook the close frame).
        assert _close_code(ws) in (1009, None)
    finally:
        ws.close()
    hub = app.extensions["orchestrator"].hub
    wait_for(lambda: hub.viewer_count() == 0, timeout=10)


def test_a_viewer_that_leaves_pings_unanswered_is_closed(
        pinging_server: tuple[str, object], st: Store) -> None:
    base, app = pinging_server
    did = _discussion(st)
    ws = _connect(base, did)
    hub = app.extensions["orchestrator"].hub
    try:
        assert json.loads(ws.recv())["type"] == "init"
        wait_for(lambda: hub.viewer_count() == 1)
        # Not reading means not answering the server's pings (sent every 0.5 s here).
        wait_for(lambda: hub.viewer_count() == 0, timeout=10)
        assert _close_code(ws) in (1008, None)  # 1008 unless a reset overtook the close frame
    finally:
        ws.close()


def test_events_a_failover_lost_make_live_and_resuming_viewers_resync(
        server: tuple[str, object], st: Store, r: redis.Redis) -> None:
    # A failover to a replica that had not received the last events: simulated on one Redis
    # by deleting them and dropping the hub's connection (as the dead primary's would drop).
    base, _ = server
    did = _discussion(st)
    ws = _connect(base, did)
    assert json.loads(ws.recv())["type"] == "init"
    _post(st, did, 5)
    seen = _frames(ws, 5)
    r.xdel(f"discussion:{did}:events", seen[3]["id"], seen[4]["id"])
    for c in r.client_list():
        if c.get("name") == HUB_CLIENT_NAME:
            r.client_kill_filter(_id=c["id"])
    try:
        resync = _frames(ws, 1)[0]
        assert resync["type"] == "resync_required", resync
        assert resync["data"]["last_event_id"] == seen[4]["id"]
        assert resync["data"]["stream_end_id"] == seen[2]["id"]
        init = _frames(ws, 1)[0]
        assert init["type"] == "init" and init["data"]["last_event_id"] == seen[2]["id"]
        _post(st, did, 1)  # live again after the fresh init
        assert _frames(ws, 1)[0]["data"]["seq"] == 6
    finally:
        ws.close()
    # A viewer coming back with an id the stream no longer reaches is told to resync too.
    ws = _connect(base, did, f"?last_event_id={seen[4]['id']}")
    try:
        frames = _frames(ws, 2)
        assert [f["type"] for f in frames] == ["resync_required", "init"]
    finally:
        ws.close()
