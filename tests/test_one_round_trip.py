"""One Redis round trip per turn: a commit may begin the next turn, and only when that is exact."""

from __future__ import annotations

from dataclasses import dataclass

from core.agents import AgentReply, Backends, TurnRequest
from core.ground.clock import iso
from core.ground.models import Message, ParticipantType, Protocol, Status
from core.ground.settings import Settings
from core.storage import keys
from core.storage.store import Commit, Store
from tests.helpers import agent, config, human
from workers.engine import Outcome, Runtime, run_step

STARTED = {"turn": 1, "round": 1, "participant_id": "a2", "participant_name": "a2"}


def _msg(text: str = "hi", pid: str = "a1") -> Message:
    return Message(message_id="msg_x", participant_id=pid, participant_name=pid,
                   participant_type=ParticipantType.AGENT, content=text, timestamp=iso())


def _types(store: Store, did: str) -> list[tuple[str, int | None]]:
    return [(e.type, e.data.get("turn")) for e in store.events_after(did, "0")
            if e.type in ("turn_started", "message")]


def test_commit_begins_the_next_turn_once(store: Store) -> None:
    store.create(config(), [agent("a1"), agent("a2")], status=Status.ACTIVE)
    token = store.acquire("disc_test", 10_000)
    assert token is not None
    store.begin_turn("disc_test", token, 0, {**STARTED, "turn": 0})
    res = store.commit("disc_test", Commit(message=_msg(), advance_turn=True), token=token,
                       turn=0, lease_ttl_ms=10_000, begin_next=STARTED, expect_seq=1)
    assert res.next_begun and res.next_cached is None and res.turn == 1
    assert store.r.hget(keys.state("disc_test"), "started_turn") == "1"
    # A later begin of the same turn (a re-run) does not announce it again.
    assert store.begin_turn("disc_test", token, 1, STARTED) is None
    assert [t for t, _ in _types(store, "disc_test")] == ["turn_started", "message",
                                                          "turn_started"]


def test_commit_does_not_begin_when_the_seq_moved(store: Store) -> None:
    store.create(config(), [agent("a1"), agent("a2")], status=Status.ACTIVE)
    token = store.acquire("disc_test", 10_000)
    store.commit("disc_test", Commit(message=_msg("a post")))  # a person posted meanwhile
    res = store.commit("disc_test", Commit(message=_msg(), advance_turn=True), token=token,
                       turn=0, lease_ttl_ms=10_000, begin_next=STARTED, expect_seq=1)
    assert res.seq == 2 and not res.next_begun
    assert store.r.hget(keys.state("disc_test"), "started_turn") is None


def test_commit_without_a_lease_never_begins(store: Store) -> None:
    store.create(config(), [agent("a1"), agent("a2")], status=Status.ACTIVE)
    res = store.commit("disc_test", Commit(message=_msg()), begin_next=STARTED, expect_seq=1)
    assert not res.next_begun


class CountingStore(Store):
    begins = 0

    def begin_turn(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        self.begins += 1
        return super().begin_turn(*args, **kwargs)


@dataclass
class PostingBackend:
    """Answers at once; on one turn a person posts while the agent 'thinks'."""

    store: Store
    post_on_turn: int
    post_text: str
    name: str = "posting"
    costly: bool = False

    def validate(self, agent) -> None:  # noqa: ANN001
        pass

    def register(self, discussion_id: str, agent) -> None:  # noqa: ANN001
        return None

    def generate(self, request: TurnRequest) -> AgentReply:
        if request.turn == self.post_on_turn:
            self.store.commit(request.discussion_id, Commit(message=Message(
                message_id="msg_h", participant_id="h1", participant_name="John",
                participant_type=ParticipantType.HUMAN, content=self.post_text,
                timestamp=iso())))
        return AgentReply(content=f"reply {request.turn} from {request.agent.name}")


def _runtime(settings: Settings, store: Store, backend: PostingBackend | None = None) -> Runtime:
    extra = {"posting": backend} if backend else {}
    return Runtime(settings=settings.model_copy(update={"step_slice_s": 30}), store=store,
                   backends=Backends(settings, extra=extra), enqueue=lambda did: None)


def test_engine_uses_one_round_trip_per_turn_and_announces_each_turn_once(
        settings: Settings, r) -> None:  # noqa: ANN001
    store = CountingStore(r)
    store.create(config(max_rounds=10), [agent("a1"), agent("a2"), agent("a3")],
                 status=Status.ACTIVE)
    assert run_step(_runtime(settings, store), "disc_test") == Outcome.IDLE
    assert store.state("disc_test").status == Status.COMPLETED
    assert store.begins == 1  # only the first turn; every later one began with a commit
    events = _types(store, "disc_test")
    expected = [(kind, turn) for turn in range(30) for kind in ("turn_started", "message")]
    assert events == expected


def test_a_post_during_a_turn_defeats_the_prediction(settings: Settings, r) -> None:  # noqa: ANN001
    store = CountingStore(r)
    parts = [agent(p, n) for p, n in (("a1", "Alice"), ("a2", "Bob"), ("a3", "Carol"))]
    for p in parts:
        p.provider = "posting"
    order = {"_participant_order": ["a1", "a2", "a3", "h1"]}
    store.create(config(protocol=Protocol.FREE_FORM, max_rounds=2, metadata=order),
                 [*parts, human("h1", "john")], status=Status.ACTIVE)
    # During turn 0 (Alice) John posts: the commit must not begin turn 1 on a stale view.
    backend = PostingBackend(store, post_on_turn=0, post_text="@Carol what do you think?")
    assert run_step(_runtime(settings, store, backend), "disc_test") == Outcome.IDLE
    messages, _ = store.messages("disc_test", 0, 20)
    assert [m.participant_id for m in messages][:2] == ["h1", "a1"]
    by_turn = {m.turn: m.participant_id for m in messages if m.turn is not None}
    started = [e.data for e in store.events_after("disc_test", "0") if e.type == "turn_started"]
    # Each turn announced once, in order: free-form agents take at most
    # FREE_FORM_AGENT_TURNS_PER_POST (3) turns after John's post, so three turns in all.
    assert [s["turn"] for s in started] == list(range(3))
    # Every announcement named the agent that then spoke that turn.
    assert {s["turn"]: s["participant_id"] for s in started} == by_turn
    assert store.begins == 2  # the first turn, and the one after the post
