"""A small client of the service's public API: REST with requests, the stream with simple-websocket.

It sends the token as `Authorization: Bearer` on every request, the WebSocket upgrade included
(only browsers need the `?access_token=` or subprotocol forms), so it never lands in a URL.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import requests
import simple_websocket


class CliError(Exception):
    """An error to show the user (exit status 1), never a trace."""


class Client:
    """The service at `url`, optionally with a bearer token."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 15.0,
                 session: requests.Session | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token or None
        self.timeout = timeout
        self.http = session or requests.Session()

    # ------------------------------------------------------------ REST

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        h = {"Accept": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        h.update(extra or {})
        return h

    def send(self, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> requests.Response:
        """One request; API errors become CliError with the service's message."""
        try:
            resp = self.http.request(method, self.url + path, json=body,
                                     headers=self._headers(headers), timeout=self.timeout)
        except requests.RequestException as exc:
            raise CliError(f"cannot reach {self.url}: {exc.__class__.__name__}") from None
        if not resp.ok:
            self._raise(resp)
        return resp

    @staticmethod
    def _raise(resp: requests.Response) -> None:
        try:
            data = resp.json()
        except ValueError:
            data = None
        message = data.get("message") if isinstance(data, dict) else None
        raise CliError(f"{resp.status_code}: {message or resp.reason}")

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> Any:
        """One JSON request; the decoded body."""
        resp = self.send(method, path, body, headers)
        try:
            return resp.json() if resp.content else None
        except ValueError:
            raise CliError(f"{method} {path}: the service did not answer JSON") from None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any, idempotency_key: str | None = None) -> Any:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self.request("POST", path, body, headers)

    @staticmethod
    def path(did: str, tail: str = "") -> str:
        return f"/v1/discussions/{quote(did, safe='')}{tail}"

    def session(self, did: str) -> dict[str, Any]:
        return self.get(self.path(did))

    def all_messages(self, did: str, offset: int = 0) -> list[dict[str, Any]]:
        """Every message from `offset` on, page by page."""
        out: list[dict[str, Any]] = []
        while True:
            page = self.get(self.path(did, f"/messages?limit=500&offset={offset}"))
            out.extend(page["messages"])
            offset += len(page["messages"])
            if not page["messages"] or offset >= page["total"]:
                return out

    def post_message(self, did: str, participant_id: str, content: str,
                     message_type: str = "text") -> dict[str, Any]:
        """Post with a fresh idempotency key, retried once on a lost connection."""
        key = uuid.uuid4().hex
        body = {"participant_id": participant_id, "content": content,
                "message_type": message_type}
        try:
            return self.post(self.path(did, "/messages"), body, key)
        except CliError as exc:
            if not str(exc).startswith("cannot reach"):
                raise
            return self.post(self.path(did, "/messages"), body, key)

    def actions(self) -> dict[str, dict[str, Any]]:
        """POST /v1/discussions/{id}/<action> endpoints the service offers, with body schemas."""
        doc = self.get("/openapi.json")
        schemas = (doc.get("components") or {}).get("schemas") or {}
        out: dict[str, dict[str, Any]] = {}
        for path, ops in (doc.get("paths") or {}).items():
            parts = path.strip("/").split("/")
            if len(parts) != 4 or parts[:2] != ["v1", "discussions"] or "post" not in ops:
                continue
            name = parts[3]
            if name == "messages" or not parts[2].startswith("{"):
                continue
            body = (ops["post"].get("requestBody") or {}).get("content", {})
            schema = _resolve((body.get("application/json") or {}).get("schema") or {}, schemas)
            fields = {f: _resolve(s, schemas) for f, s in (schema.get("properties") or {}).items()}
            out[name] = {"fields": fields, "required": schema.get("required") or []}
        return out

    # ------------------------------------------------------------ the stream

    def stream_url(self, did: str, last_event_id: str | None) -> str:
        parts = urlsplit(self.url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        query = {"last_event_id": last_event_id} if last_event_id else {}
        return urlunsplit((scheme, parts.netloc, parts.path + self.path(did, "/stream"),
                           urlencode(query), ""))

    def frames(self, did: str, last_event_id: str | None,
               idle_timeout: float = 30.0) -> Iterator[dict[str, Any] | None]:
        """Frames of one connection; None after `idle_timeout` quiet seconds (a ping is sent).

        Raises simple_websocket.ConnectionClosed when the connection ends.
        """
        try:
            ws = simple_websocket.Client.connect(
                self.stream_url(did, last_event_id), headers=self._headers(),
                max_message_size=16 * 1024 * 1024)
        except (OSError, simple_websocket.ConnectionError) as exc:
            raise simple_websocket.ConnectionClosed(1006, str(exc)) from None
        try:
            while True:
                raw = ws.receive(timeout=idle_timeout)
                if raw is None:
                    ws.send('{"type":"ping"}')
                    yield None
                    continue
                try:
                    frame = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(frame, dict):
                    yield frame
        finally:
            ws.close()


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    for _ in range(10):
        if "$ref" in schema:
            schema = schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
        elif "anyOf" in schema or "oneOf" in schema:
            options = schema.get("anyOf") or schema.get("oneOf") or []
            schema = next((s for s in options if s.get("type") != "null"), {})
        else:
            return schema
    return schema
