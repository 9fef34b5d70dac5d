"""A real A2A agent for tests, built with the a2a-sdk's own server side (Starlette + uvicorn)
on a free port in a thread. It records every message it receives and answers as `mode` says:

- `message`: one direct agent Message; `task`: a Task with a text artifact, completed;
- `stream`: a Task whose artifact arrives in chunks (the card says it streams);
- `input_required`, `failed`, `rejected`: the task ends in that state;
- `slow`: sleeps `delay_s` first; `prose`: a ballot answered in prose, no data part;
- any mode answers a request carrying a `vote` or `choose_speaker` task with a data part
  (`{"vote": ...}` / `{"next": ...}`) unless the mode is `prose`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from a2a.helpers import (
    get_data_parts,
    get_text_parts,
    new_data_part,
    new_task_from_user_message,
    new_text_message,
    new_text_part,
)
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import AgentCapabilities, AgentCard, AgentInterface, AgentSkill, Role
from google.protobuf.json_format import MessageToDict
from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import JSONResponse


@dataclass
class Received:
    message_id: str
    context_id: str
    texts: list[str]
    data: list[Any]
    metadata: dict[str, Any]
    authorization: str | None


@dataclass
class Behaviour:
    mode: str = "message"
    delay_s: float = 0.0
    vote: str = "yes"
    fail_first: int = 0  # answer the first N message POSTs with 503, before the SDK sees them
    received: list[Received] = field(default_factory=list)
    posted_ids: list[str] = field(default_factory=list)  # message ids of every POST, refused too


def _task_of(data: list[Any]) -> dict[str, Any]:
    for item in data:
        if isinstance(item, dict) and isinstance(item.get("task"), dict):
            return item["task"]
    return {}


class TestExecutor(AgentExecutor):
    def __init__(self, name: str, behaviour: Behaviour) -> None:
        self.name = name
        self.b = behaviour

    def _reply(self, texts: list[str], task: dict[str, Any]) -> tuple[str, Any]:
        turn_line = next((t for t in texts if t.startswith("<transcript>")), "")
        seen = turn_line.count("\n[")
        text = f"{self.name} here: I read {seen} transcript lines and add my view."
        if task.get("kind") == "vote":
            if self.b.mode == "prose":
                return "I'm in favour, with one reservation about the rollout.", None
            return f"{text} I vote {self.b.vote}.", {"vote": self.b.vote,
                                                     "reason": "it is sound"}
        if task.get("kind") == "choose_speaker":
            names = task.get("candidates") or []
            return f"Next: {names[0]}", {"next": names[0] if names else "END"}
        return text, None

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        msg = context.message
        assert msg is not None
        headers = context.call_context.state.get("headers", {}) if context.call_context else {}
        data = get_data_parts(msg.parts)
        self.b.received.append(Received(
            message_id=msg.message_id, context_id=msg.context_id,
            texts=get_text_parts(msg.parts), data=data,
            metadata=MessageToDict(msg.metadata),
            authorization=headers.get("authorization")))
        if self.b.delay_s:
            await asyncio.sleep(self.b.delay_s)
        text, structured = self._reply(get_text_parts(msg.parts), _task_of(data))
        if self.b.mode in ("message", "slow", "prose"):
            parts = [new_text_part(text)] + ([new_data_part(structured)] if structured else [])
            reply = new_text_message(text, context_id=msg.context_id)
            del reply.parts[:]
            reply.parts.extend(parts)
            await event_queue.enqueue_event(reply)
            return
        task = context.current_task or new_task_from_user_message(msg)
        await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.start_work()
        ends = {"input_required": updater.requires_input, "failed": updater.failed,
                "rejected": updater.reject}
        if self.b.mode in ends:
            await ends[self.b.mode](new_text_message(
                f"{self.b.mode}: cannot go on", context_id=task.context_id,
                role=Role.ROLE_AGENT))
            return
        if self.b.mode == "stream":
            words = text.split(" ")
            for i, word in enumerate(words):
                await updater.add_artifact([new_text_part(word if i == 0 else " " + word)],
                                           artifact_id="answer", append=i > 0,
                                           last_chunk=i == len(words) - 1)
                await asyncio.sleep(0.01)
        else:
            await updater.add_artifact([new_text_part(text)], artifact_id="answer")
        if structured:
            await updater.add_artifact([new_data_part(structured)], artifact_id="decision")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError


class _Gate(BaseHTTPMiddleware):
    """Records each POSTed message id; refuses calls without the expected bearer token (when
    one is set) and the first `fail_first` calls with 503."""

    def __init__(self, app: Any, token: str | None, behaviour: Behaviour) -> None:
        super().__init__(app)
        self.token = token
        self.b = behaviour

    async def dispatch(self, request: Any, call_next: Any) -> Any:
        if request.method != "POST":
            return await call_next(request)
        try:
            body = json.loads(await request.body())
            self.b.posted_ids.append(body["params"]["message"]["messageId"])
        except (ValueError, KeyError, TypeError):
            pass
        if self.token and request.headers.get("authorization") != f"Bearer {self.token}":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        if self.b.fail_first > 0:
            self.b.fail_first -= 1
            return JSONResponse({"error": "busy"}, status_code=503)
        return await call_next(request)


@dataclass
class A2AAgent:
    url: str
    behaviour: Behaviour
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_a2a_agent(name: str = "Partner Agent", *, streaming: bool = False,
                    input_modes: tuple[str, ...] = ("text/plain", "application/json"),
                    token: str | None = None, card: bool = True, port: int = 0) -> A2AAgent:
    """Serve an A2A agent on `port` (a free one by default); returns once it accepts
    connections."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    agent_card = AgentCard(
        name=name, description=f"{name}, a test agent", version="1.0.0",
        default_input_modes=list(input_modes), default_output_modes=["text/plain"],
        capabilities=AgentCapabilities(streaming=streaming),
        supported_interfaces=[AgentInterface(protocol_binding="JSONRPC", url=url,
                                             protocol_version="1.0")],
        skills=[AgentSkill(id="discuss", name="Discuss", description="Takes part in a discussion",
                           tags=["discussion"], input_modes=list(input_modes))],
    )
    behaviour = Behaviour()
    handler = DefaultRequestHandler(agent_executor=TestExecutor(name, behaviour),
                                    task_store=InMemoryTaskStore(), agent_card=agent_card)
    routes = list(create_agent_card_routes(agent_card)) if card else []
    routes += create_jsonrpc_routes(handler, "/")
    app = Starlette(routes=routes)
    app.add_middleware(_Gate, token=token, behaviour=behaviour)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test A2A agent did not start")
        time.sleep(0.02)
    return A2AAgent(url=url, behaviour=behaviour, server=server, thread=thread)


if __name__ == "__main__":  # python -m tests.a2a_agent --port 9999 (docs/agents.md)
    import argparse

    parser = argparse.ArgumentParser(description="Serve the test A2A agent.")
    parser.add_argument("--port", type=int, default=9999)
    parser.add_argument("--name", default="Partner Agent")
    args = parser.parse_args()
    served = start_a2a_agent(args.name, streaming=True, port=args.port)
    served.behaviour.mode = "stream"
    print(f"A2A agent {args.name!r} on {served.url}", flush=True)
    served.thread.join()
