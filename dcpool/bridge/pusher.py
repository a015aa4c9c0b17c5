"""Pusher Channels protocol v7, server side, sans-IO (EVENTS.md §1.3).

:class:`PusherConnection` takes received text frames and the time, and returns what to send
(:class:`Send`) or that the socket must close (:class:`Close`); the trio shell in
:mod:`dcpool.bridge.app` only moves frames and time.  What it implements:

* ``pusher:connection_established`` ``{"socket_id": "123.456", "activity_timeout": 120}`` (data
  is a JSON-encoded *string*, as in the protocol);
* ``pusher:ping``/``pusher:pong`` both ways: after ``activity_timeout`` s without a frame from
  the client the server pings; without an answer within ``pong_timeout`` s it closes with 4201;
* ``pusher:subscribe`` to ``private-*`` channels only, with ``auth = "<key>:" +
  hex(HMAC_SHA256(secret, "<socket_id>:<channel>"))`` checked in constant time; success is
  ``pusher_internal:subscription_succeeded``, failure ``pusher:subscription_error`` (the socket
  stays open, like Pusher); ``pusher:unsubscribe``;
* ``client-*`` events are refused with ``pusher:error`` (the bridge is a one-way feed);
* :meth:`publish` yields ``{"event", "channel", "data"}`` frames only for subscribed channels.

Close codes: 4001 unknown app key, 4007 unsupported protocol version (4000-4099: do not
reconnect), 4201 pong not received (4200-4299: reconnect at once), 4200 server shutdown.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["Send", "Close", "PusherConnection", "sign_channel", "SOCKET_ID_RE", "PusherAuthError",
           "authorize_channel", "account_channel"]

SOCKET_ID_RE = re.compile(r"\A\d{1,20}\.\d{1,20}\Z")
CHANNEL_RE = re.compile(r"\A[-a-zA-Z0-9_=@,.;]{1,164}\Z")

CLOSE_UNKNOWN_APP = 4001
CLOSE_UNSUPPORTED_PROTOCOL = 4007
CLOSE_SHUTDOWN = 4200
CLOSE_PONG_TIMEOUT = 4201


class PusherAuthError(ValueError):
    """A ``/pusher/auth`` request that must not be signed (bad socket_id or channel)."""


def account_channel(account: str) -> str:
    """The private channel of one account, messenger-style (ChatApp:
    ``private-v1.licenses.<line>.messengers.<type>``)."""
    return f"private-dcpool.accounts.{account}.messengers.telegram"


def sign_channel(secret: str, socket_id: str, channel: str) -> str:
    return hmac.new(secret.encode(), f"{socket_id}:{channel}".encode(), hashlib.sha256).hexdigest()


def authorize_channel(key: str, secret: str, socket_id: str, channel: str,
                      allowed: Callable[[str], bool]) -> dict[str, str]:
    """The body of a ``/pusher/auth`` answer.  Validates the socket_id format *before* signing
    (GHSA-7v7m-pcw5-h3cg: ``1.1:private-other`` would otherwise sign another channel)."""
    if not SOCKET_ID_RE.match(socket_id):
        raise PusherAuthError("invalid socket_id")
    if not channel.startswith("private-") or not CHANNEL_RE.match(channel) or not allowed(channel):
        raise PusherAuthError("channel not available")
    return {"auth": f"{key}:{sign_channel(secret, socket_id, channel)}"}


@attrs.frozen
class Send:
    text: str


@attrs.frozen
class Close:
    code: int
    reason: str


def _frame(event: str, data: Any, channel: str | None = None) -> Send:
    body: dict[str, Any] = {"event": event, "data": data if isinstance(data, str) else json.dumps(data)}
    if channel is not None:
        body["channel"] = channel
    return Send(json.dumps(body, separators=(",", ":")))


class PusherConnection:
    def __init__(self, *, socket_id: str, key: str, secret: str, now: float,
                 activity_timeout: float = 120.0, pong_timeout: float = 30.0,
                 channel_exists: Callable[[str], bool] = lambda _c: True) -> None:
        self.socket_id = socket_id
        self._key = key
        self._secret = secret
        self.activity_timeout = activity_timeout
        self.pong_timeout = pong_timeout
        self._channel_exists = channel_exists
        self.subscribed: set[str] = set()
        self._last_heard = now
        self._ping_sent_at: float | None = None
        self.closed = False

    @staticmethod
    def check_url(path: str, query: dict[str, str], key: str) -> Close | None:
        """Validate ``/app/<key>?protocol=7``: None when acceptable, else the close to send."""
        if path.rstrip("/").rsplit("/", 1)[-1] != key:
            return Close(CLOSE_UNKNOWN_APP, "App key not in this cluster")
        try:
            protocol = int(query.get("protocol", "7"))
        except ValueError:
            protocol = 0
        if protocol < 5 or protocol > 7:
            return Close(CLOSE_UNSUPPORTED_PROTOCOL, "Unsupported protocol version")
        return None

    def established(self) -> list[Send]:
        return [_frame("pusher:connection_established",
                       {"socket_id": self.socket_id, "activity_timeout": int(self.activity_timeout)})]

    def receive(self, text: str, now: float) -> list[Send | Close]:
        self._last_heard = now
        self._ping_sent_at = None
        try:
            msg = json.loads(text)
            event = msg["event"]
            if not isinstance(event, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return [_frame("pusher:error", {"message": "Invalid message format", "code": None})]
        data = msg.get("data")
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                pass
        if event == "pusher:ping":
            return [_frame("pusher:pong", {})]
        if event == "pusher:pong":
            return []
        if event == "pusher:subscribe":
            return self._subscribe(data if isinstance(data, dict) else {})
        if event == "pusher:unsubscribe":
            channel = data.get("channel") if isinstance(data, dict) else None
            self.subscribed.discard(channel)
            return []
        if event.startswith("client-"):
            return [_frame("pusher:error", {"message": "Client events are not enabled on this bridge", "code": None})]
        return []  # unknown events are ignored, as Pusher servers do

    def _subscribe(self, data: dict[str, Any]) -> list[Send | Close]:
        channel = data.get("channel")
        if not isinstance(channel, str) or not CHANNEL_RE.match(channel):
            return [_frame("pusher:error", {"message": "Invalid channel name", "code": None})]

        def refuse(why: str, status: int) -> list[Send | Close]:
            return [_frame("pusher:subscription_error",
                           {"type": "AuthError", "error": why, "status": status}, channel)]

        if not channel.startswith("private-"):
            return refuse("Only private channels are served", 403)
        auth = data.get("auth")
        expected = f"{self._key}:{sign_channel(self._secret, self.socket_id, channel)}"
        if not isinstance(auth, str) or not hmac.compare_digest(auth.encode(), expected.encode()):
            return refuse("Invalid signature", 401)
        if not self._channel_exists(channel):
            return refuse("Unknown channel", 404)
        self.subscribed.add(channel)
        return [_frame("pusher_internal:subscription_succeeded", {}, channel)]

    def publish(self, channel: str, event: str, data: Any) -> list[Send]:
        if channel not in self.subscribed or self.closed:
            return []
        return [_frame(event, data, channel)]

    def next_deadline(self) -> float:
        if self._ping_sent_at is not None:
            return self._ping_sent_at + self.pong_timeout
        return self._last_heard + self.activity_timeout

    def poll(self, now: float) -> list[Send | Close]:
        """Timers: ping after ``activity_timeout`` of silence, close 4201 after a missed pong."""
        if self.closed:
            return []
        if self._ping_sent_at is not None:
            if now >= self._ping_sent_at + self.pong_timeout:
                self.closed = True
                return [Close(CLOSE_PONG_TIMEOUT, "Pong reply not received")]
            return []
        if now >= self._last_heard + self.activity_timeout:
            self._ping_sent_at = now
            return [_frame("pusher:ping", {})]
        return []

    def shutdown(self) -> list[Close]:
        self.closed = True
        return [Close(CLOSE_SHUTDOWN, "Server shutting down")]
