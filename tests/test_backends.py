"""Agent backends against the reference Execution Platform and its OpenAI-compatible fake,
both served over real HTTP: normal calls, each injected fault, retries and their limits."""

from __future__ import annotations

import time

import pytest
import requests

from core.agents import Backends
from core.agents.http import HttpCaller, retry_after_s
from core.ground.errors import AgentError, ServiceUnavailable, Unprocessable
from core.ground.ids import new_id
from core.ground.settings import Settings
from scripts.embedded_redis import free_port
from tests.agent_helpers import calls, participant, tuned, turn_request


class Sleeps(list[float]):
    """A real sleep that also records each wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        time.sleep(seconds)


def _ep(settings: Settings, sleeps: Sleeps | None = None, **changes):
    s = tuned(settings, **changes) if changes else settings
    caller = HttpCaller(s, sleep=sleeps if sleeps is not None else Sleeps())
    return Backends(s, caller=caller)


def _registered(backends: Backends, **params):
    agent = participant("execution_platform", **params)
    # A fresh discussion id each time: the platform de-duplicates registrations by it.
    agent.instance_id = backends.register(new_id("disc"), agent)
    return agent


def test_register_then_one_call_per_turn(settings, platform) -> None:
    base, _ = platform
    backends = _ep(settings)
    agent = _registered(backends)
    assert agent.instance_id and agent.instance_id.startswith("inst_")
    # The same discussion and participant register once (Idempotency-Key), even when retried.
    assert backends.register("disc_same", agent) == backends.register("disc_same", agent)
    reply = backends.get("execution_platform").generate(turn_request(agent, turn=4))
    # The reply answers the transcript's last speaker by name, without quoting them.
    assert "Ann" in reply.content and "hello" not in reply.content
    assert "hello" in str(requests.get(f"{base}/requests", params={
        "agent_id": agent.instance_id, "turn": 4}, timeout=5).json())
    assert reply.prompt_tokens > 0 and reply.completion_tokens > 0
    assert reply.attempts == 1 and reply.model == "ref-model"
    assert calls(base, agent.instance_id, 4) == 1


@pytest.mark.parametrize("mode", ["500", "502", "503"])
def test_5xx_is_retried_with_backoff(settings, platform, mode) -> None:
    base, _ = platform
    sleeps = Sleeps()
    backends = _ep(settings, sleeps)
    agent = _registered(backends, faults={"fail_first": 2, "error_mode": mode})
    reply = backends.get("execution_platform").generate(turn_request(agent))
    assert reply.attempts == 3 and calls(base, agent.instance_id, 0) == 3
    assert len(sleeps) == 2 and all(0 <= s <= settings.agent_backoff_max_s for s in sleeps)


def test_429_waits_for_retry_after(settings, platform) -> None:
    base, _ = platform
    sleeps = Sleeps()
    backends = _ep(settings, sleeps)
    agent = _registered(backends, faults={"fail_first": 1, "error_mode": "429",
                                          "retry_after_s": 0.7})
    started = time.monotonic()
    reply = backends.get("execution_platform").generate(turn_request(agent))
    assert reply.attempts == 2 and calls(base, agent.instance_id, 0) == 2
    assert sleeps == [0.7] and time.monotonic() - started >= 0.7


def test_429_longer_than_the_deadline_fails_at_once(settings, platform) -> None:
    backends = _ep(settings)
    agent = _registered(backends, faults={"fail_first": 1, "error_mode": "429",
                                          "retry_after_s": 30})
    started = time.monotonic()
    with pytest.raises(AgentError, match="no time left") as exc:
        backends.get("execution_platform").generate(turn_request(agent, deadline_s=3))
    assert exc.value.transient and time.monotonic() - started < 2


def test_other_4xx_is_not_retried(settings, platform) -> None:
    base, _ = platform
    backends = _ep(settings)
    agent = _registered(backends, faults={"fail_first": 5, "error_mode": "400"})
    with pytest.raises(AgentError, match="HTTP 400") as exc:
        backends.get("execution_platform").generate(turn_request(agent))
    assert not exc.value.transient and calls(base, agent.instance_id, 0) == 1


def test_retries_are_bounded(settings, platform) -> None:
    base, _ = platform
    backends = _ep(settings, agent_max_retries=2)
    agent = _registered(backends, faults={"fail_first": 100, "error_mode": "503"})
    with pytest.raises(AgentError, match="gave up after 3 attempts") as exc:
        backends.get("execution_platform").generate(turn_request(agent))
    assert exc.value.transient and exc.value.details["attempts"] == 3
    assert calls(base, agent.instance_id, 0) == 3


def test_latency_past_the_deadline_fails_within_it(settings, platform) -> None:
    backends = _ep(settings, agent_read_timeout_s=5)
    agent = _registered(backends, faults={"fail_first": 100, "error_mode": "hang", "hang_s": 4})
    started = time.monotonic()
    with pytest.raises(AgentError) as exc:
        backends.get("execution_platform").generate(turn_request(agent, deadline_s=1.0))
    elapsed = time.monotonic() - started
    assert exc.value.transient and 0.9 <= elapsed < 2.0, elapsed


def test_connection_refused_is_retried_then_fails(settings, platform) -> None:
    sleeps = Sleeps()
    backends = _ep(settings, sleeps, execution_platform_url=f"http://127.0.0.1:{free_port()}")
    agent = participant("execution_platform", instance_id="inst_x")
    with pytest.raises(AgentError, match="cannot connect") as exc:
        backends.get("execution_platform").generate(turn_request(agent))
    assert exc.value.transient
    assert exc.value.details["attempts"] == settings.agent_max_retries + 1
    assert len(sleeps) == settings.agent_max_retries


@pytest.mark.parametrize(("mode", "message"), [("malformed", "not valid JSON"),
                                               ("empty", "empty reply")])
def test_bad_replies_fail_without_retry(settings, platform, mode, message) -> None:
    base, _ = platform
    backends = _ep(settings)
    agent = _registered(backends, faults={"fail_first": 1, "error_mode": mode})
    with pytest.raises(AgentError, match=message):
        backends.get("execution_platform").generate(turn_request(agent))
    assert calls(base, agent.instance_id, 0) == 1


def test_platform_streams_deltas(settings, platform) -> None:
    backends = _ep(settings)
    agent = _registered(backends, stream=True)
    deltas: list[str] = []
    reply = backends.get("execution_platform").generate(
        turn_request(agent, on_delta=deltas.append))
    assert len(deltas) > 3 and "".join(deltas) == reply.content
    assert reply.completion_tokens > 0


def test_registration_errors(settings, platform) -> None:
    backends = _ep(settings)
    bad = participant("execution_platform", faults={"error_mode": "boom"})
    with pytest.raises(Unprocessable, match="refused agent"):
        backends.register("disc_t", bad)
    down = _ep(settings, execution_platform_url=f"http://127.0.0.1:{free_port()}",
               agent_register_deadline_s=1.0)
    with pytest.raises(ServiceUnavailable):
        down.register("disc_t", participant("execution_platform"))


# ---------------------------------------------------------------- OpenAI-compatible


def test_openai_chat_completion(settings, platform) -> None:
    base, state = platform
    backends = _ep(settings)
    agent = participant("openai", model="gpt-4o-mini")
    reply = backends.get("openai").generate(turn_request(agent, turn=2, did="disc_o"))
    assert reply.content and reply.model == "gpt-4o-mini"
    assert reply.prompt_tokens > 0 and reply.completion_tokens > 0
    sent = state.requests["disc_o:2"]
    assert sent["model"] == "gpt-4o-mini" and sent["temperature"] == 0.2
    assert sent["messages"][0]["role"] == "system"
    assert state.calls["disc_o:2"] == 1


def test_openai_retries_and_streams(settings, platform) -> None:
    _, state = platform
    backends = _ep(settings)
    agent = participant("openai", model="m", stream=True,
                        extra_body={"faults": {"fail_first": 1, "error_mode": "429",
                                               "retry_after_s": 0.2}})
    deltas: list[str] = []
    reply = backends.get("openai").generate(
        turn_request(agent, did="disc_s", on_delta=deltas.append))
    assert "".join(deltas) == reply.content and reply.attempts == 2
    assert state.calls["disc_s:0"] == 2
    assert "usage_estimated" not in reply.metadata  # the usage chunk was read


@pytest.mark.parametrize(("mode", "message"), [("malformed", "not valid JSON"),
                                               ("empty", "empty reply"),
                                               ("400", "HTTP 400")])
def test_openai_bad_replies(settings, platform, mode, message) -> None:
    backends = _ep(settings)
    agent = participant("openai", model="m",
                        extra_body={"faults": {"fail_first": 1, "error_mode": mode}})
    with pytest.raises(AgentError, match=message):
        backends.get("openai").generate(turn_request(agent, did=f"disc_{mode}"))


def test_agent_configuration_validated(settings) -> None:
    backends = Backends(settings)
    with pytest.raises(Unprocessable, match="not available"):
        backends.validate(participant("nonexistent"))
    with pytest.raises(Unprocessable, match="needs a model"):
        backends.validate(participant("openai", model=None))
    with pytest.raises(Unprocessable, match="temperature"):
        backends.validate(participant("openai").model_copy(update={"temperature": 2.5}))
    with pytest.raises(Unprocessable, match="stream"):
        backends.validate(participant("execution_platform", stream="yes"))
    unset = Backends(tuned(settings, execution_platform_url=""))
    with pytest.raises(Unprocessable, match="EXECUTION_PLATFORM_URL"):
        unset.validate(participant("execution_platform"))


def test_default_provider_follows_the_platform_url() -> None:
    assert Settings(_env_file=None).default_provider == "simulated"  # type: ignore[call-arg]
    with_url = Settings(_env_file=None, execution_platform_url="http://ep")  # type: ignore[call-arg]
    assert with_url.default_provider == "execution_platform"
    chosen = Settings(_env_file=None, execution_platform_url="http://ep",  # type: ignore[call-arg]
                      default_provider="simulated")
    assert chosen.default_provider == "simulated"


def test_retry_after_forms() -> None:
    assert retry_after_s("2") == 2.0 and retry_after_s("0.5") == 0.5
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_s("soon") is None and retry_after_s(None) is None


def test_turn_deadline_must_sit_below_celerys_limits() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="below STEP_SOFT_TIME_LIMIT_S"):
        Settings(_env_file=None, turn_deadline_s=119, step_slice_s=2)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="model_prices"):
        Settings(_env_file=None, model_prices={"m": "free"})  # type: ignore[call-arg]
    ok = Settings(_env_file=None, turn_deadline_s=100, step_slice_s=2)  # type: ignore[call-arg]
    # The lease is short and renewed while the turn runs, however long the turn's deadline.
    assert ok.lease_renew_interval_s * 2 <= ok.lease_ttl_s < ok.turn_deadline_s


def test_model_prices_from_the_environment(monkeypatch) -> None:
    from workers.accounting import price_usd

    monkeypatch.setenv("MODEL_PRICES", '{"llama3": {"prompt": 0.2, "completion": 0.4}}')
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert price_usd(s, "llama3", 1_000_000, 500_000) == pytest.approx(0.4)
    assert price_usd(s, "unknown", 1000, 1000) == 0.0
