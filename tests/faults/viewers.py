"""WebSocket viewers as a real client would write them: reconnect with the last event id."""

from __future__ import annotations

import json
import threading
import time

import websocket

TERMINAL = ("completed", "failed", "cancelled")


class Viewer(threading.Thread):
    """Watches one discussion until it ends; records every message seq it was shown."""

    def __init__(self, base_url: str, discussion_id: str, deadline_s: float) -> None:
        super().__init__(daemon=True)
        self.url = base_url.replace("http://", "ws://") + f"/v1/discussions/{discussion_id}/stream"
        self.did = discussion_id
        self.deadline = time.monotonic() + deadline_s
        self.seqs: list[int] = []
        self.event_ids: list[str] = []
        self.last_id: str | None = None
        self.init_cursor: str | None = None  # the first init's last_event_id
        self.connects = 0
        self.resyncs = 0
        self.close_codes: list[int] = []
        self.finished = False

    def run(self) -> None:
        while not self.finished and time.monotonic() < self.deadline:
            query = f"?last_event_id={self.last_id}" if self.last_id else ""
            try:
                ws = websocket.create_connection(self.url + query, timeout=10)
            except (OSError, websocket.WebSocketException):
                time.sleep(0.3)
                continue
            self.connects += 1
            try:
                while time.monotonic() < self.deadline:
                    opcode, data = ws.recv_data(control_frame=True)
                    if opcode == websocket.ABNF.OPCODE_CLOSE:
                        self.close_codes.append(int.from_bytes(data[:2], "big") if data else 0)
                        break
                    if opcode != websocket.ABNF.OPCODE_TEXT:
                        continue
                    self._frame(json.loads(data))
                    if self.finished:
                        break
            except (OSError, websocket.WebSocketException):
                pass
            finally:
                ws.close()
            if not self.finished:
                time.sleep(0.2)

    def _frame(self, frame: dict) -> None:
        kind = frame.get("type")
        if kind == "init":
            if self.last_id is None or self.resyncs:
                self.seqs = [m["seq"] for m in frame["data"]["messages"]]
            self.last_id = frame["data"]["last_event_id"]
            if self.init_cursor is None:
                self.init_cursor = self.last_id
            status = frame["data"]["session"]["status"]
            self.finished = status in TERMINAL
            return
        if kind == "resync_required":
            self.resyncs += 1
            return
        if "id" not in frame:
            return
        self.last_id = frame["id"]
        self.event_ids.append(frame["id"])
        if kind == "message":
            self.seqs.append(frame["data"]["seq"])
        elif kind == "status" and frame["data"].get("status") in TERMINAL:
            self.finished = True

    def problems(self, expected_count: int) -> list[str]:
        """What this viewer got wrong compared with a transcript of `expected_count`."""
        out = []
        if not self.finished:
            out.append("did not see the end")
        if self.seqs != list(range(1, expected_count + 1)):
            out.append(f"seqs {self.seqs[:5]}..{self.seqs[-5:]} (n={len(self.seqs)}) "
                       f"!= 1..{expected_count}")
        keys = [tuple(map(int, i.split("-"))) for i in self.event_ids]
        if keys != sorted(set(keys)):
            out.append("event ids repeated or out of order")
        return out
