"""(b) AutoGen AgentChat's RoundRobinGroupChat with canned replies; runs in bench/.venv-autogen.

Usage: python bench/autogen_run.py DISCUSSIONS TURNS [BUFFER]
  -> JSON {"started": t, "turns": [...], "cpu_s": s} on stdout, turn records as in
bench/stats.py. Each discussion is a team of three AssistantAgents whose
ReplayChatCompletionClient returns a reply at once; the team stops after TURNS agent messages.
All teams run at once on one event loop. With BUFFER each agent keeps a
BufferedChatCompletionContext of that many messages (the same bounded window our engine gives
an agent, CONTEXT_WINDOW_MESSAGES); without it, AutoGen's default unbounded context.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_core.model_context import BufferedChatCompletionContext
from autogen_ext.models.replay import ReplayChatCompletionClient

PERSONAS = ("Security_Expert", "Backend_Developer", "Product_Manager")
TOPIC = "Design the authentication API for a multi-tenant SaaS product"


def _team(turns: int, buffer: int) -> RoundRobinGroupChat:
    agents = []
    for persona in PERSONAS:
        replies = [f"As {persona} I would add point {i + 1}." for i in range(turns + 1)]
        context = BufferedChatCompletionContext(buffer_size=buffer) if buffer else None
        agents.append(AssistantAgent(persona, model_client=ReplayChatCompletionClient(replies),
                                     system_message=f"You are the {persona}.",
                                     model_context=context))
    # The task message counts as one; TURNS agent messages follow it.
    return RoundRobinGroupChat(agents, termination_condition=MaxMessageTermination(turns + 1))


async def _one(did: str, turns: int, buffer: int, out: list) -> None:
    team = _team(turns, buffer)
    index = 0
    async for item in team.run_stream(task=TOPIC):
        source = getattr(item, "source", None)
        if source in PERSONAS:
            out.append((did, index, time.time(), time.perf_counter()))
            index += 1


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def main(discussions: int, turns: int, buffer: int) -> None:
    out: list = []
    cpu = _cpu()
    started = time.time()
    await asyncio.gather(*(_one(f"d{i}", turns, buffer, out) for i in range(discussions)))
    json.dump({"started": started, "turns": out, "cpu_s": _cpu() - cpu}, sys.stdout)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]),
                     int(sys.argv[3]) if len(sys.argv) > 3 else 0))
