"""The protocol base: pure turn-taking rules over a read-only view of a discussion.

A protocol never does I/O. The engine reads a View from Redis, asks `next_action`, runs what it
says, and asks `after_message` how the protocol's own small state (`pstate`) changes. Any worker
may run the next step, so a protocol keeps nothing in memory between calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from core.ground.clock import epoch
from core.ground.errors import Unprocessable
from core.ground.models import (
    CreateDiscussion,
    DiscussionConfig,
    DiscussionState,
    Message,
    MessageType,
    Participant,
    ParticipantType,
    Permission,
    Status,
    StopReason,
)

# The provider of an agent whose turns the caller's own system posts (over REST or WebSocket).
EXTERNAL = "external"


def posts_itself(p: Participant) -> bool:
    """People and external agents: their turns are posted, never called; the engine waits."""
    return not p.is_agent or p.provider == EXTERNAL


# Create-body options that only some protocols take: each protocol lists the ones it takes in
# `options`, and the base refuses the others (so a new protocol states what it accepts).
OPTIONS = {
    "moderator_agent": lambda body: any(a.moderator for a in body.agents),
    "require_approval": lambda body: bool(body.require_approval),
    "parallel_rounds": lambda body: bool(body.parallel_rounds),
    "consensus": lambda body: body.consensus is not None,
}


@dataclass(frozen=True)
class View:
    """What a protocol may look at: config, participants in order, state and recent messages."""

    config: DiscussionConfig
    participants: Sequence[Participant]
    state: DiscussionState
    recent: Sequence[Message] = ()
    muted: frozenset[str] = frozenset()
    # Wall-clock time (epoch seconds) for the deadline check; None skips it.
    now: float | None = None
    # Free-form: agent turns allowed per new post once people take part (a setting).
    agent_turns_per_post: int = 3

    @property
    def agents(self) -> list[Participant]:
        return [p for p in self.participants if p.is_agent]

    @property
    def called(self) -> list[Participant]:
        """The agents the engine calls (every agent but the external ones), in listed order."""
        return [p for p in self.participants if not posts_itself(p)]

    @property
    def writers(self) -> list[Participant]:
        """Agents and the people who may write, in listed order."""
        return [p for p in self.participants if p.is_agent or p.can(Permission.WRITE)]

    @property
    def pstate(self) -> dict[str, Any]:
        return self.state.pstate

    def participant(self, participant_id: str) -> Participant | None:
        for p in self.participants:
            if p.participant_id == participant_id:
                return p
        return None


@dataclass(frozen=True)
class Speak:
    """An agent takes the next turn."""

    participant_id: str
    round: int


@dataclass(frozen=True)
class WaitForHuman:
    """A person has the next turn; the discussion waits for them (durably, in Redis)."""

    participant_id: str
    round: int


@dataclass(frozen=True)
class SpeakAll:
    """Several agents answer at once from the same context (`parallel_rounds`); their messages
    take consecutive turns from the current one, in this order."""

    participant_ids: tuple[str, ...]
    round: int


@dataclass(frozen=True)
class Choose:
    """An orchestration call: an agent (e.g. a moderator) decides something for the protocol,
    such as who speaks next among `candidates`. The protocol writes the prompt and the
    backend task here, and reads the answer in `after_choice`; the call is accounted to the
    orchestration, not to a participant."""

    moderator_id: str
    candidates: tuple[str, ...]
    round: int
    # What the agent is asked: the call, not the decision's identity (not compared).
    instructions: str = field(default="", compare=False)
    task: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Finish:
    """The discussion is over, for this reason."""

    reason: str
    outcome: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Idle:
    """Nothing to do until someone posts."""


Action = Speak | SpeakAll | Choose | WaitForHuman | Finish | Idle


def turn_owner(message: Message) -> str:
    """Whose turn a message filled: the person a proxy agent answered for, else its author."""
    return str(message.metadata.get("proxy_for") or message.participant_id)


class BaseProtocol:
    """Shared rules: termination checks first, then the subclass picks the speaker."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    # Which of OPTIONS this protocol takes.
    options: ClassVar[frozenset[str]] = frozenset()
    # True when people change who speaks between turns (a moderator): the engine then re-reads
    # the discussion before every turn instead of trusting its running snapshot.
    reads_every_turn: ClassVar[bool] = False

    def validate(self, body: CreateDiscussion, participants: Sequence[Participant]) -> None:
        """422 when the create body sets an option this protocol does not take, or when its
        participants do not fit the protocol (see `check`)."""
        for option, is_set in OPTIONS.items():
            if option not in self.options and is_set(body):
                raise Unprocessable(f"{option} does not apply to `{self.name}` discussions")
        self.check(body, participants)

    def check(self, body: CreateDiscussion, participants: Sequence[Participant]) -> None:
        """A protocol's own rules for a new discussion's participants and options."""

    def next_action(self, view: View) -> Action:
        """What happens next: a speaker, a wait, the end, or nothing for now."""
        reason = self.termination(view)
        if reason:
            return Finish(reason, self.outcome(view, reason))
        if not self.speakers(view):
            return Finish(StopReason.NO_PARTICIPANTS.value, self.outcome(view, "no_participants"))
        return self.select(view)

    def termination(self, view: View) -> str | None:
        """The first termination condition that holds, shared by every protocol.

        Checked in this order, so `stop_reason` names the first that fired: a stop phrase,
        the wall-clock deadline, the token budget, `max_messages`, `max_rounds`.
        """
        cfg, st = view.config, view.state
        if cfg.stop_phrases and self._stop_phrase_seen(view):
            return StopReason.STOP_PHRASE.value
        if (cfg.deadline_s is not None and view.now is not None
                and view.now >= epoch(cfg.created_at) + cfg.deadline_s):
            return StopReason.DEADLINE.value
        if cfg.token_budget is not None and st.tokens_used >= cfg.token_budget:
            return StopReason.TOKEN_BUDGET.value
        if cfg.max_messages is not None and st.seq >= cfg.max_messages:
            return StopReason.MAX_MESSAGES.value
        if self.rounds_done(view) >= cfg.max_rounds:
            return StopReason.MAX_ROUNDS.value
        return None

    @staticmethod
    def _stop_phrase_seen(view: View) -> bool:
        phrases = [p.lower() for p in view.config.stop_phrases]
        return any(p in m.content.lower() for m in view.recent for p in phrases)

    def outcome(self, view: View, reason: str) -> dict[str, Any]:
        """What the discussion decided, recorded when it ends; most protocols decide nothing."""
        return {}

    def speakers(self, view: View) -> list[Participant]:
        """Who takes turns under this protocol, in order."""
        return view.agents

    def rounds_done(self, view: View) -> int:
        """Completed rounds; a round is one turn for each speaker."""
        n = len(self.speakers(view))
        return view.state.turn // n if n else 0

    def select(self, view: View) -> Action:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def after_message(self, view: View, message: Message) -> dict[str, Any]:
        """The protocol state after a committed turn's message; default: unchanged."""
        return view.pstate

    def after_skip(self, view: View, participant_id: str) -> dict[str, Any]:
        """The protocol state after a person's turn was skipped (its deadline passed)."""
        return view.pstate

    def task(self, view: View, speaker: Participant) -> dict[str, Any]:
        """What the backend is asked for beyond a free reply on this turn (e.g. a ballot),
        so backends that can return structured output do; empty for a plain turn."""
        return {}

    def after_choice(self, view: View, action: Choose, content: str | None,
                     decision: dict[str, Any] | None = None
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The protocol state after an orchestration call (`Choose`) answered `content`
        (None when the call failed; `decision` is its structured answer when the backend gave
        one), and the event that records it."""
        raise NotImplementedError(f"{self.name} does not make orchestration calls")

    def message_metadata(self, view: View, speaker: Participant, content: str,
                         decision: dict[str, Any] | None = None) -> dict[str, Any]:
        """Extra metadata the protocol reads from an agent's reply (e.g. its vote); `decision`
        is the structured answer when the backend returned one."""
        return {}

    def may_post(self, view: View, participant: Participant) -> str | None:
        """Why `participant` may not post now (None when they may)."""
        if participant.participant_type == ParticipantType.HUMAN and not participant.can(
            Permission.WRITE
        ):
            return "participant lacks write permission"
        if participant.participant_id in view.muted:
            return "participant is muted"
        return None

    def takes_turn(self, view: View, author: Participant,
                   message_type: MessageType = MessageType.TEXT) -> bool:
        """Whether a post by `author` is the turn the discussion is waiting for."""
        return (
            view.state.status == Status.WAITING_FOR_HUMAN
            and view.state.waiting_for == author.participant_id
        )

    def wakes_on_post(self, view: View, author: Participant) -> bool:
        """Whether a post by `author` may give an agent something to answer (start a step)."""
        return False

    def instructions(self, view: View, speaker: Participant) -> str:
        """What the speaking agent is told about this turn."""
        return self.description
