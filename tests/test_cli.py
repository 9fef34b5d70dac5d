"""The command line against a live service (real HTTP and WebSocket server, real worker)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import requests
from click.testing import CliRunner
from flask import request
from simple_websocket import ConnectionClosed

from cli.client import Client
from cli.commands import main
from cli.watch import Watcher
from tests.helpers import agent_body, wait_for

ROOT = Path(__file__).resolve().parent.parent

YAML_BODY = """\
topic: Design the API for user authentication
protocol: round_robin
max_rounds: 2
agents:
  - persona: Security Expert
    role: reviewer
    provider: simulated
    params: {latency_ms: 30}
  - persona: Backend Developer
    provider: simulated
    params: {latency_ms: 30}
"""


def cli(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Any:
    result = CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)
    return result


def run_cli(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it: `python -m cli ...` in its own process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("ORCHESTRATOR_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def start(base: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = requests.post(f"{base}/v1/discussions", json=body, timeout=10)
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_create_from_yaml_then_watch_to_the_end(live_server: str, tmp_path: Path) -> None:
    spec = tmp_path / "discussion.yaml"
    spec.write_text(YAML_BODY)
    created = run_cli("--url", live_server, "create", str(spec))
    assert created.returncode == 0, created.stderr
    did = created.stdout.strip()
    assert did.startswith("disc_")
    assert f"/ui/discussions/{did}" in created.stderr

    watched = run_cli("--url", live_server, "watch", did)
    assert watched.returncode == 0, watched.stderr
    lines = watched.stdout.splitlines()
    messages = [ln for ln in lines if ln.startswith("#")]
    assert [int(m.split()[0][1:]) for m in messages] == [1, 2, 3, 4]  # each once, in order
    assert "Security Expert (agent, reviewer):" in messages[0]
    assert "\x1b[" not in watched.stdout  # no colour codes when not a terminal
    assert lines[-1].startswith("-- completed | round 2/2 | 4 messages")
    assert "stop: max_rounds" in lines[-1]


def test_create_from_json_on_stdin_list_show_and_export(live_server: str,
                                                        tmp_path: Path) -> None:
    body = json.dumps(agent_body(2, 1))
    res = cli("--url", live_server, "create", "-", "--json", input=body)
    assert res.exit_code == 0, res.output
    did = json.loads(res.stdout)["id"]
    wait_for(lambda: requests.get(f"{live_server}/v1/discussions/{did}", timeout=5)
             .json()["status"] == "completed", timeout=30)

    listed = cli("--url", live_server, "list")
    assert listed.exit_code == 0
    assert listed.output.splitlines()[0].split() == ["ID", "STATUS", "PROTOCOL", "ROUND",
                                                     "MSGS", "TOPIC"]
    row = next(ln for ln in listed.output.splitlines() if ln.startswith(did))
    assert row.split()[1:5] == ["completed", "round_robin", "1/1", "2"]
    assert cli("--url", live_server, "list", "--active").output.strip() == "no discussions"

    shown = cli("--url", live_server, "show", did)
    assert shown.exit_code == 0
    assert "Design API for user authentication" in shown.output
    assert "completed" in shown.output and "Security Expert (agent)" in shown.output
    assert "#2 Backend Developer" in shown.output
    raw = json.loads(cli("--url", live_server, "show", did, "--json").output)
    assert raw["id"] == did and raw["message_count"] == 2

    out = tmp_path / "t.md"
    res = cli("--url", live_server, "export", did, "-o", str(out))
    assert res.exit_code == 0
    served = requests.get(f"{live_server}/v1/discussions/{did}/export?format=markdown",
                          timeout=5).text
    assert out.read_text().rstrip("\n") == served.rstrip("\n")
    assert "Design API for user authentication" in served
    exported = json.loads(cli("--url", live_server, "export", did, "--format", "json").output)
    rest = requests.get(f"{live_server}/v1/discussions/{did}/messages", timeout=5).json()
    assert exported["messages"] == rest["messages"]
    assert exported["session"]["status"] == "completed"


def test_post_as_a_person_in_turn_and_refused_out_of_turn(live_server: str) -> None:
    # The agent takes 3 s, so right after Alice posts it is surely not her turn.
    body = {**agent_body(1, 2, latency_ms=3000),
            "humans": [{"user_id": "alice", "name": "Alice"}]}
    session = start(live_server, body)
    did = session["id"]
    alice = session["participants"][1]["participant_id"]
    wait_for(lambda: requests.get(f"{live_server}/v1/discussions/{did}", timeout=5)
             .json()["status"] == "waiting_for_human", timeout=30)
    res = cli("--url", live_server, "post", did, "--as", alice, "Sessions expire in 15 min.")
    assert res.exit_code == 0, res.output
    assert res.output.startswith("posted #2 msg_")
    # Straight away it is the agent's turn again: round-robin refuses Alice.
    res = cli("--url", live_server, "post", did, "--as", alice, "me again")
    assert res.exit_code == 1
    assert "409" in res.output and "not your turn" in res.output
    msgs = requests.get(f"{live_server}/v1/discussions/{did}/messages", timeout=5).json()
    assert [m["content"] for m in msgs["messages"]].count("Sessions expire in 15 min.") == 1
    requests.delete(f"{live_server}/v1/discussions/{did}", timeout=10)  # stop the slow agent


class DroppingClient(Client):
    """Drops the connection after a few frames, the first few times: a flaky network."""

    def __init__(self, *a: Any, drops: int = 3, after: int = 2, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.drops, self.after, self.urls = drops, after, []

    def frames(self, did: str, last_event_id: str | None, idle_timeout: float = 30.0):
        self.urls.append(self.stream_url(did, last_event_id))
        for n, frame in enumerate(super().frames(did, last_event_id, idle_timeout)):
            yield frame
            if self.drops and n + 1 >= self.after:
                self.drops -= 1
                raise ConnectionClosed(1006, "dropped by the test")


def test_watch_resumes_after_drops_without_loss_or_duplicates(live_app, actions_server: str
                                                              ) -> None:
    live_server = actions_server
    upgrades: list[str | None] = []
    live_app.before_request_funcs[None].insert(0, lambda: upgrades.append(
        request.headers.get("Authorization")) if request.path.endswith("/stream") else None)
    session = start(live_server, agent_body(3, 3, latency_ms=60, stream=True))
    client = DroppingClient(live_server, token="tok-123", drops=3, after=3)
    lines: list[str] = []
    statuses: list[str] = []
    watcher = Watcher(client, session["id"], lambda ln: lines.append(click.unstyle(ln)),
                      lambda st: statuses.append(click.unstyle(st)), sleep=lambda _t: None)
    final = watcher.run()
    assert final["status"] == "completed"
    seqs = [int(ln.split()[0][1:]) for ln in lines if ln.startswith("#")]
    assert seqs == list(range(1, 10))
    assert watcher.connects >= 4
    assert "last_event_id=" in client.urls[-1] and "tok-123" not in client.urls[-1]
    assert upgrades == ["Bearer tok-123"] * watcher.connects  # the token rides in a header
    # Streamed text shows on the status line while the agent speaks.
    assert any(": …As Security Expert" in st or "Expert: …" in st for st in statuses), statuses
    assert statuses[-1].startswith("completed | round 3/3 | 9 messages")


def test_moderate_and_vote_use_the_offered_actions_with_the_token(actions_server: str,
                                                                   action_calls: list) -> None:
    session = start(actions_server, agent_body(1, 1))
    did = session["id"]
    agent = session["participants"][0]["participant_id"]
    env = {"ORCHESTRATOR_URL": actions_server, "ORCHESTRATOR_TOKEN": "secret-key"}
    listed = cli("actions", env=env)
    assert "fake_hold: participant_id*, reason" in listed.output
    assert "fake_vote: choice*, participant_id*, weight" in listed.output
    assert "fake_moderation: action*, by*, participant_id, reason  (actions: hush, spotlight)" \
        in listed.output

    res = cli("moderate", did, "fake_hold", "--as", agent, "-f", "reason=lunch", env=env)
    assert res.exit_code == 0, res.output
    res = cli("vote", did, "yes", "--as", agent, "-f", "weight=2", env=env)
    assert res.exit_code == 0, res.output
    # A verb of an endpoint with an `action` enum: the actor goes in `by`, the target in
    # `participant_id`.
    res = cli("moderate", did, "hush", "--as", "mod_1", "--target", agent, "--reason", "loud",
              env=env)
    assert res.exit_code == 0, res.output
    assert action_calls[-1]["body"] == {"by": "mod_1", "action": "hush", "participant_id": agent,
                                        "reason": "loud"}
    del action_calls[-1]
    assert action_calls == [
        {"action": "fake_hold", "discussion_id": did, "auth": "Bearer secret-key",
         "body": {"participant_id": agent, "reason": "lunch"}},
        {"action": "fake_vote", "discussion_id": did, "auth": "Bearer secret-key",
         "body": {"participant_id": agent, "choice": "yes", "weight": 2}},
    ]
    bad = cli("vote", did, "maybe", "--as", agent, env=env)
    assert bad.exit_code == 1 and "422" in bad.output
    missing = cli("moderate", did, "explode", env=env)
    assert missing.exit_code == 1 and "no 'explode' action" in missing.output
    assert "fake_hold" in missing.output and "spotlight" in missing.output
    no_target = cli("moderate", did, "fake_vote", "--target", agent, env=env)
    assert no_target.exit_code == 1 and "takes no target" in no_target.output


@pytest.mark.parametrize(("args", "expected"), [
    (["show", "disc_nope"], "404"),
    (["watch", "disc_nope"], "404"),
    (["export", "disc_nope"], "404"),
    (["post", "disc_nope", "--as", "human_x", "hi"], "404"),
    (["moderate", "disc_nope", "fake_hold", "-f", "no-equals-sign"], "expected key=value"),
])
def test_errors_are_one_line_with_status_1(live_server: str, args: list[str],
                                           expected: str) -> None:
    res = cli("--url", live_server, *args)
    assert res.exit_code == 1
    assert expected in res.output
    assert "Traceback" not in res.output


def test_bad_files_and_unreachable_service(live_server: str, tmp_path: Path) -> None:
    listy = tmp_path / "list.yaml"
    listy.write_text("- just\n- a list\n")
    broken = tmp_path / "broken.json"
    broken.write_text("{topic: [")
    invalid = tmp_path / "invalid.json"
    invalid.write_text('{"topic": "x", "agents": [], "surprise": 1}')
    for path, expected in [(listy, "must hold a mapping"), (broken, "not valid YAML or JSON"),
                           (tmp_path / "missing.yaml", "no such file"),
                           (invalid, "422")]:
        res = cli("--url", live_server, "create", str(path))
        assert res.exit_code == 1, path
        assert expected in res.output, res.output
    res = cli("--url", "http://127.0.0.1:9", "--timeout", "2", "list")
    assert res.exit_code == 1 and "cannot reach http://127.0.0.1:9" in res.output
    assert cli("--url", live_server, "post", "disc_x", "--as", "h", input="  \n").exit_code == 1


def test_stream_url_carries_the_resume_point_but_never_the_token() -> None:
    c = Client("https://orch.example/base/", token="secret")
    assert c.stream_url("disc_1", "5-1") == \
        "wss://orch.example/base/v1/discussions/disc_1/stream?last_event_id=5-1"
    assert Client("http://h:1").stream_url("disc_1", None) == \
        "ws://h:1/v1/discussions/disc_1/stream"


def test_real_lifecycle_moderation_and_vote_endpoints(live_server: str) -> None:
    """pause/resume and a moderation verb on a moderated discussion; a vote in a consensus one."""
    body = {"topic": "Retro", "protocol": "moderated", "max_rounds": 3,
            "agents": [{"persona": "Facilitator", "provider": "simulated",
                        "params": {"latency_ms": 300}}],
            "humans": [{"user_id": "mo", "name": "Mo",
                        "permissions": ["read", "write", "moderate"]}]}
    session = start(live_server, body)
    did = session["id"]
    agent, mo = (p["participant_id"] for p in session["participants"])
    url = ["--url", live_server]
    res = cli(*url, "moderate", did, "pause", "--as", mo, "--reason", "coffee")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["status"] == "paused"
    res = cli(*url, "moderate", did, "resume", "--as", mo)
    assert json.loads(res.output)["action"] == "resume"
    res = cli(*url, "moderate", did, "mute", "--as", mo, "--target", agent)
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["detail"] == {"participant_id": agent, "by": mo}
    res = cli(*url, "moderate", did, "end", "--as", mo)
    assert json.loads(res.output)["status"] == "completed"
    refused = cli(*url, "moderate", did, "pause", "--as", mo)
    assert refused.exit_code == 1 and "409" in refused.output

    vote_body = {"topic": "Adopt passkeys", "protocol": "consensus", "max_rounds": 1,
                 "agents": [{"persona": "Security Expert", "provider": "simulated"}],
                 "humans": [{"user_id": "alice", "name": "Alice"}]}
    session = start(live_server, vote_body)
    did = session["id"]
    alice = session["participants"][1]["participant_id"]
    wait_for(lambda: requests.get(f"{live_server}/v1/discussions/{did}", timeout=5)
             .json()["waiting_for"] == alice, timeout=30)
    res = cli(*url, "vote", did, "yes", "--as", alice, "--reason", "Phishing-resistant.")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["message_type"] == "vote"
    wait_for(lambda: requests.get(f"{live_server}/v1/discussions/{did}", timeout=5)
             .json()["status"] == "completed", timeout=30)
    shown = cli(*url, "show", did)
    assert "outcome:" in shown.output and "decision" in shown.output
