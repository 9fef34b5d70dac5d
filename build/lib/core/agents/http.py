"""Robust HTTP for agent backends: timeouts, one deadline per turn, retries with jittered backoff.

Connection errors, timeouts, 5xx and 429 are transient: retried with exponential backoff and
full jitter (or after the server's `Retry-After`), never past the deadline. Any other 4xx is the
caller's mistake and is not retried. A reply that is not the JSON we expect is not retried
either: the call was answered (and possibly paid for), so the turn fails instead.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from core.ground.errors import AgentError
from core.ground.settings import Settings


@dataclass
class CallStats:
    """How a call went: attempts made (1 = no retry) and time spent waiting between them."""

    attempts: int = 0
    waited_s: float = 0.0

    @property
    def retries(self) -> int:
        return max(0, self.attempts - 1)


def make_session(pool_size: int = 100) -> requests.Session:
    """A pooled session; retries are ours, so urllib3's are off."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=10, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds (it may be a number or an HTTP date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def _snippet(resp: requests.Response) -> str:
    try:
        text = resp.text
    except Exception:  # noqa: BLE001 - a body we cannot decode says nothing useful
        return ""
    return " ".join(text.split())[:200]


class HttpCaller:
    """POSTs JSON with the settings' timeouts and retry policy; sleep, clock and rng injectable."""

    def __init__(
        self,
        settings: Settings,
        session: requests.Session | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self._session = session
        self._sleep, self._clock, self._rng = sleep, clock, rng

    @property
    def session(self) -> requests.Session:
        if self._session is None:  # made on first use: after a worker forks, not at import
            self._session = make_session()
        return self._session

    def backoff_s(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**(attempt-1))]."""
        s = self.settings
        return self._rng() * min(s.agent_backoff_max_s, s.agent_backoff_base_s * 2 ** (attempt - 1))

    def post(
        self,
        url: str,
        body: dict[str, Any],
        *,
        what: str,
        deadline_s: float,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        stats: CallStats | None = None,
    ) -> requests.Response:
        """POST `body`; a 2xx response, or AgentError once retries or the deadline are spent.

        `stats` (when given) is filled in as the call goes, so a caller sees the attempts made
        even when this raises. With `stream` the response is returned unread.
        """
        s = self.settings
        stats = stats if stats is not None else CallStats()
        ends = self._clock() + deadline_s
        while True:
            remaining = ends - self._clock()
            if remaining <= 0:
                raise AgentError(f"{what}: the turn deadline of {deadline_s:g}s passed",
                                 transient=True, attempts=stats.attempts)
            stats.attempts += 1
            timeout = (min(s.agent_connect_timeout_s, remaining),
                       min(s.agent_read_timeout_s, remaining))
            wait: float | None = None
            try:
                resp = self.session.post(url, json=body, headers=headers, timeout=timeout,
                                         stream=stream)
            except requests.Timeout:
                error = f"{what}: no answer within {timeout[1]:.3g}s"
            except requests.ConnectionError as exc:
                error = f"{what}: cannot connect ({type(exc).__name__})"
            except requests.RequestException as exc:
                raise AgentError(f"{what}: request failed ({type(exc).__name__})",
                                 attempts=stats.attempts) from None
            else:
                if resp.status_code < 300:
                    return resp
                code = resp.status_code
                detail = _snippet(resp)
                resp.close()
                if code != 429 and code < 500:
                    raise AgentError(f"{what}: refused with HTTP {code}: {detail}",
                                     attempts=stats.attempts, status=code)
                error = f"{what}: HTTP {code}" + (f": {detail}" if detail else "")
                if code == 429:
                    wait = retry_after_s(resp.headers.get("Retry-After"))
            if stats.attempts > s.agent_max_retries:
                raise AgentError(f"{error} (gave up after {stats.attempts} attempts)",
                                 transient=True, attempts=stats.attempts)
            delay = wait if wait is not None else self.backoff_s(stats.attempts)
            if self._clock() + delay >= ends:
                raise AgentError(f"{error} (no time left in the turn to retry in {delay:.3g}s)",
                                 transient=True, attempts=stats.attempts)
            self._sleep(delay)
            stats.waited_s += delay


def json_body(resp: requests.Response, what: str, attempts: int) -> dict[str, Any]:
    """The response's JSON object, or AgentError for a malformed or non-object body."""
    try:
        data = resp.json()
    except (ValueError, requests.RequestException):
        raise AgentError(f"{what}: the reply is not valid JSON", attempts=attempts) from None
    finally:
        resp.close()
    if not isinstance(data, dict):
        raise AgentError(f"{what}: the reply is not a JSON object", attempts=attempts)
    return data


def sse_events(resp: requests.Response, what: str, ends: float,
               clock: Callable[[], float] = time.monotonic) -> Any:
    """Yield each `data:` payload of a server-sent-events body (decoded JSON), until `[DONE]`."""
    try:
        for line in resp.iter_lines(decode_unicode=True):
            if clock() > ends:
                raise AgentError(f"{what}: the turn deadline passed while streaming",
                                 transient=True)
            if not line or not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                return
            try:
                yield json.loads(payload)
            except ValueError:
                raise AgentError(f"{what}: a streamed chunk is not valid JSON") from None
    except requests.RequestException as exc:
        raise AgentError(f"{what}: the stream broke ({type(exc).__name__})",
                         transient=True) from None
    finally:
        resp.close()
