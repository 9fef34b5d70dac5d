"""The A2A client's side of one call (async, run on core.agents.aio's loop): the agent card,
sending one message, reading the result as a message, a task or a stream of task events."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from a2a.client import A2ACardResolver, ClientCallContext, ClientConfig, ClientFactory
from a2a.client.errors import AgentCardResolutionError
from a2a.helpers import get_data_parts, get_text_parts
from a2a.types import AgentCard, GetTaskRequest, SendMessageRequest, Task, TaskState
from google.protobuf.json_format import MessageToDict

from core.agents.http import CallStats
from core.ground.errors import AgentError
from core.ground.settings import Settings

TEXT_MODES = ("text/plain", "text/markdown", "text", "text/*", "*/*")
CARD_TTL_S = 300.0
_BINDINGS = ["JSONRPC", "HTTP+JSON"]
_FAILED = {TaskState.TASK_STATE_INPUT_REQUIRED: "input-required",
           TaskState.TASK_STATE_FAILED: "failed",
           TaskState.TASK_STATE_REJECTED: "rejected",
           TaskState.TASK_STATE_CANCELED: "canceled",
           TaskState.TASK_STATE_AUTH_REQUIRED: "auth-required"}
_DONE = TaskState.TASK_STATE_COMPLETED


def accepts_text(card: AgentCard) -> bool:
    """True when the card (or one of its skills) takes plain text."""
    modes = list(card.default_input_modes)
    for skill in card.skills:
        modes.extend(skill.input_modes)
    return not modes or any(m in TEXT_MODES or m.startswith("text/") for m in modes)


def card_error(url: str, exc: BaseException) -> tuple[bool, str]:
    """(unavailable?, message) for a failed card resolution."""
    if isinstance(exc, AgentCardResolutionError):
        code = exc.status_code
        cause = exc.__cause__
        if isinstance(cause, httpx.TransportError) or (code is not None and code >= 500):
            return True, f"the A2A agent at {url} did not answer ({type(cause).__name__})"
        return False, (f"{url} serves no valid A2A agent card"
                       + (f" (HTTP {code})" if code else "") + f": {exc.message[:200]}")
    if isinstance(exc, ValueError):
        return False, f"{url} serves no usable A2A agent card: {str(exc)[:200]}"
    return False, f"{url} serves no valid A2A agent card ({type(exc).__name__})"


def decision_request(task: dict[str, Any]) -> dict[str, Any]:
    """The decision a ballot or a speaker choice asks for, as the data part states it: its
    kind, its context and the JSON schema an answer's data part should follow."""
    if not task.get("kind"):
        return {}
    return {"task": {k: task[k] for k in ("kind", "proposal", "candidates", "schema")
                     if k in task}}


class CardCache:
    """Agent cards by URL for a few minutes, so a turn does not fetch the card every time."""

    def __init__(self) -> None:
        self._cards: dict[str, tuple[float, AgentCard]] = {}

    async def fetch(self, url: str, headers: dict[str, str], timeout_s: float, *,
                    fresh: bool = False) -> AgentCard:
        hit = self._cards.get(url)
        if hit and not fresh and time.monotonic() - hit[0] < CARD_TTL_S:
            return hit[1]
        async with httpx.AsyncClient(timeout=timeout_s, headers=headers) as http:
            card = await A2ACardResolver(http, url).get_agent_card()
        self._cards[url] = (time.monotonic(), card)
        return card


@dataclass
class Outcome:
    text: str = ""
    state: str = "task"
    task_id: str | None = None
    decision: dict[str, Any] | None = None
    usage: dict[str, Any] = field(default_factory=dict)


def _transient(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, httpx.TransportError | TimeoutError):
            return True
        if isinstance(cause, httpx.HTTPStatusError):
            code = cause.response.status_code
            return code == 429 or code >= 500
        cause = cause.__cause__
    return False


def _usage(metadata: Any) -> dict[str, Any]:
    data = MessageToDict(metadata) if metadata is not None else {}
    usage = data.get("usage") if isinstance(data, dict) else None
    return {k: int(v) for k, v in (usage or {}).items()
            if k in ("prompt_tokens", "completion_tokens") and isinstance(v, int | float)}


class _Reader:
    """Collects a reply from whatever the agent sends: a message, a task, task events."""

    def __init__(self, on_delta: Callable[[str], None] | None) -> None:
        self.on_delta = on_delta
        self.artifacts: dict[str, list[str]] = {}
        self.data: list[Any] = []
        self.out = Outcome()
        self.task_state: int | None = None
        self.status_text = ""
        self.deltas = 0

    def _parts(self, parts: Any, artifact_id: str | None, append: bool) -> None:
        texts = get_text_parts(parts)
        self.data.extend(d for d in get_data_parts(parts) if isinstance(d, dict))
        if artifact_id is None:
            return
        chunks = self.artifacts.setdefault(artifact_id, []) if append else []
        if not append:
            self.artifacts[artifact_id] = chunks
        for text in texts:
            chunks.append(text)
            if self.on_delta is not None and text:
                self.deltas += 1
                self.on_delta(text)

    def task(self, task: Task) -> None:
        self.out.task_id = task.id or self.out.task_id
        self.task_state = task.status.state
        self.status_text = "\n".join(get_text_parts(task.status.message.parts))
        self.artifacts = {}
        for art in task.artifacts:
            self.artifacts[art.artifact_id] = get_text_parts(art.parts)
            self.data.extend(d for d in get_data_parts(art.parts) if isinstance(d, dict))
        self.out.usage = _usage(task.metadata) or self.out.usage

    def event(self, ev: Any) -> None:
        if ev.HasField("message"):
            self.out.text = "\n".join(get_text_parts(ev.message.parts))
            self.data.extend(d for d in get_data_parts(ev.message.parts) if isinstance(d, dict))
            self.out.usage = _usage(ev.message.metadata)
            self.task_state = _DONE
            self.out.state = "message"
        elif ev.HasField("task"):
            self.task(ev.task)
        elif ev.HasField("status_update"):
            self.out.task_id = ev.status_update.task_id or self.out.task_id
            self.task_state = ev.status_update.status.state
            self.status_text = "\n".join(get_text_parts(ev.status_update.status.message.parts))
            self.out.usage = _usage(ev.status_update.metadata) or self.out.usage
        elif ev.HasField("artifact_update"):
            up = ev.artifact_update
            self.out.task_id = up.task_id or self.out.task_id
            self._parts(up.artifact.parts, up.artifact.artifact_id, up.append)

    def finish(self, what: str) -> Outcome:
        if self.task_state in _FAILED:
            state = _FAILED[self.task_state]
            raise AgentError(f"{what}: the task ended {state}"
                             + (f": {self.status_text[:300]}" if self.status_text else ""))
        if self.out.state != "message":
            self.out.state = "completed"
            self.out.text = "".join("".join(c) for c in self.artifacts.values()) or \
                self.status_text
        decisions = [d for d in self.data if "vote" in d or "next" in d]
        self.out.decision = decisions[-1] if decisions else None
        return self.out


async def _once(settings: Settings, cards: CardCache, url: str, headers: dict[str, str],
                send: SendMessageRequest, *, what: str, ends: float, stream: bool,
                reader: _Reader) -> None:
    remaining = ends - time.monotonic()
    timeout = httpx.Timeout(min(settings.agent_read_timeout_s, remaining),
                            connect=min(settings.agent_connect_timeout_s, remaining))
    card = await cards.fetch(url, headers, min(settings.agent_read_timeout_s, remaining))
    async with httpx.AsyncClient(timeout=timeout, headers=headers) as http:
        config = ClientConfig(streaming=stream, httpx_client=http,
                              supported_protocol_bindings=list(_BINDINGS))
        client = ClientFactory(config).create(card)
        call = ClientCallContext(timeout=remaining)
        async for event in client.send_message(send, context=call):
            reader.event(event)
        # A blocking call may still return a task that is not done: poll it under the deadline.
        while reader.task_state not in (_DONE, *_FAILED) and reader.out.task_id:
            if time.monotonic() + 0.25 >= ends:
                raise AgentError(f"{what}: the task did not finish within the turn",
                                 transient=True)
            await asyncio.sleep(0.25)
            reader.task(await client.get_task(GetTaskRequest(id=reader.out.task_id),
                                              context=call))


async def run_turn(settings: Settings, cards: CardCache, url: str, headers: dict[str, str],
                   send: SendMessageRequest, *, what: str, ends: float, stream: bool,
                   on_delta: Callable[[str], None] | None, stats: CallStats) -> Outcome:
    """Send the turn's message, retrying transient failures with jittered backoff while time
    is left (never once text has been streamed to viewers); the reply read from the result."""
    while True:
        stats.attempts += 1
        reader = _Reader(on_delta if stream else None)
        try:
            await _once(settings, cards, url, headers, send, what=what, ends=ends,
                        stream=stream, reader=reader)
            return reader.finish(what)
        except AgentError as exc:
            exc.details["attempts"] = stats.attempts
            raise
        except Exception as exc:  # noqa: BLE001 - the SDK and httpx raise many kinds
            transient = _transient(exc)
            error = f"{what}: {type(exc).__name__}: {str(exc)[:200]}"
            if not transient or reader.deltas or stats.attempts > settings.agent_max_retries:
                raise AgentError(error, transient=transient, attempts=stats.attempts) from None
            delay = random.random() * min(settings.agent_backoff_max_s,
                                          settings.agent_backoff_base_s * 2 ** stats.attempts)
            if time.monotonic() + delay >= ends:
                raise AgentError(f"{error} (no time left to retry)", transient=True,
                                 attempts=stats.attempts) from None
            await asyncio.sleep(delay)
            stats.waited_s += delay
