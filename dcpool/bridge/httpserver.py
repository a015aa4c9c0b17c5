"""A small HTTP/1.1 + WebSocket server on trio: h11 and wsproto (both sans-IO) over trio streams.

Why not a framework: the bridge needs four routes, one of them a WebSocket and two of them
long-lived streams (SSE).  h11 and wsproto are the sans-IO protocol cores that hypercorn and
trio-websocket themselves are built on; using them directly keeps the dependency surface to two
pure-Python packages, matches the project's sans-IO + thin trio shell rule, and lets HTTP and
WebSocket share one port without an ASGI layer.

A handler is ``async def handler(request: Request, responder: Responder)``; it calls exactly one
of ``responder.send(...)``, ``responder.stream(...)`` (chunked; returns a writer) or
``responder.accept_websocket()`` (returns a :class:`WebSocket`).
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs
import h11
import trio
from wsproto.connection import Connection as WsConnection
from wsproto.connection import ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, TextMessage
from wsproto.utilities import LocalProtocolError

__all__ = ["Request", "Responder", "WebSocket", "WebSocketClosed", "serve_http"]

log = logging.getLogger("dcpool.bridge.http")

MAX_BODY = 1 << 20
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@attrs.frozen
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    peer: str

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


class WebSocketClosed(Exception):
    pass


class WebSocket:
    def __init__(self, stream: trio.abc.Stream, trailing: bytes) -> None:
        self._stream = stream
        self._ws = WsConnection(ConnectionType.SERVER, trailing_data=trailing)  # None would mean EOF
        self._send_lock = trio.Lock()
        self._parts: list[str] = []
        self.closed = False

    async def _flush(self, data: bytes) -> None:
        async with self._send_lock:
            try:
                await self._stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self.closed = True
                raise WebSocketClosed from exc

    async def send_text(self, text: str) -> None:
        if self.closed:
            raise WebSocketClosed
        await self._flush(self._ws.send(TextMessage(data=text)))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        try:
            async with self._send_lock:
                await self._stream.send_all(self._ws.send(CloseConnection(code=code, reason=reason)))
        except (trio.BrokenResourceError, trio.ClosedResourceError, LocalProtocolError):
            pass  # the peer is gone or already closed: nothing left to tell it

    async def receive_text(self) -> str:
        """The next complete text message; raises WebSocketClosed when the peer closes."""
        while True:
            for event in self._ws.events():
                if isinstance(event, TextMessage):
                    self._parts.append(event.data)
                    if event.message_finished:
                        text, self._parts = "".join(self._parts), []
                        return text
                elif isinstance(event, BytesMessage):
                    continue
                elif isinstance(event, Ping):
                    await self._flush(self._ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    if not self.closed:
                        self.closed = True
                        try:
                            await self._stream.send_all(self._ws.send(event.response()))
                        except (trio.BrokenResourceError, trio.ClosedResourceError):
                            pass
                    raise WebSocketClosed
                elif isinstance(event, Message):
                    continue
            if self.closed:
                raise WebSocketClosed
            try:
                data = await self._stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self.closed = True
                raise WebSocketClosed from exc
            if not data:
                self.closed = True
                raise WebSocketClosed
            self._ws.receive_data(bytes(data))


class Responder:
    def __init__(self, stream: trio.abc.Stream, conn: h11.Connection, request: Request) -> None:
        self._stream = stream
        self._conn = conn
        self._request = request
        self.done = False
        self.upgraded: WebSocket | None = None

    async def _send(self, event: Any) -> None:
        data = self._conn.send(event)
        if data:
            await self._stream.send_all(data)

    async def send(self, status: int, body: bytes | str = b"", content_type: str = "text/plain; charset=utf-8",
                   headers: dict[str, str] | None = None) -> None:
        payload = body.encode() if isinstance(body, str) else body
        hdrs = [("content-type", content_type), ("content-length", str(len(payload)))]
        hdrs += list((headers or {}).items())
        await self._send(h11.Response(status_code=status, headers=hdrs))
        await self._send(h11.Data(data=payload))
        await self._send(h11.EndOfMessage())
        self.done = True

    async def send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        import json  # noqa: PLC0415

        await self.send(status, json.dumps(obj), "application/json", headers)

    async def stream(self, status: int, content_type: str, headers: dict[str, str] | None = None
                     ) -> Callable[[bytes], Awaitable[None]]:
        hdrs = [("content-type", content_type), ("cache-control", "no-cache")]
        hdrs += list((headers or {}).items())
        await self._send(h11.Response(status_code=status, headers=hdrs))
        self.done = True

        async def write(chunk: bytes) -> None:
            await self._send(h11.Data(data=chunk))

        return write

    async def accept_websocket(self) -> WebSocket:
        key = self._request.header("sec-websocket-key")
        if key is None or (self._request.header("upgrade", "") or "").lower() != "websocket":
            await self.send(400, "expected a WebSocket upgrade")
            raise WebSocketClosed
        accept = base64.b64encode(hashlib.sha1(key.encode() + _WS_GUID).digest()).decode()
        await self._send(h11.InformationalResponse(status_code=101, headers=[
            ("upgrade", "websocket"), ("connection", "Upgrade"), ("sec-websocket-accept", accept)]))
        self.done = True
        trailing, _closed = self._conn.trailing_data
        self.upgraded = WebSocket(self._stream, trailing)
        return self.upgraded


Handler = Callable[[Request, Responder], Awaitable[None]]


async def _serve_connection(stream: trio.SocketStream, handler: Handler) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=65536)
    try:
        peer = "%s:%s" % stream.socket.getpeername()[:2]
    except OSError:
        peer = "?"
    try:
        while True:
            request = None
            body = bytearray()
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await stream.receive_some(65536)
                    conn.receive_data(data)
                    continue
                if isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > MAX_BODY:
                        await stream.send_all(conn.send(h11.Response(status_code=413, headers=[("content-length", "0")])))
                        await stream.send_all(conn.send(h11.EndOfMessage()))
                        return
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    return
            assert request is not None
            target = request.target.decode("latin-1")
            parts = urlsplit(target)
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers}
            req = Request(request.method.decode(), parts.path, dict(parse_qsl(parts.query)), headers, bytes(body), peer)
            responder = Responder(stream, conn, req)
            try:
                await handler(req, responder)
            except (WebSocketClosed, trio.BrokenResourceError, trio.ClosedResourceError):
                return  # the peer went away (an SSE reader closing is the usual case)
            except Exception:
                log.exception("handler failed for %s %s", req.method, req.path)
                if not responder.done:
                    await responder.send(500, "internal error")
                return
            if responder.upgraded is not None or conn.our_state is not h11.DONE:
                return
            if conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()
    except (h11.RemoteProtocolError, h11.LocalProtocolError):
        return
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return
    finally:
        with trio.move_on_after(1) as scope:
            scope.shield = True
            await stream.aclose()


async def serve_http(handler: Handler, host: str, port: int, *,
                     task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve until cancelled; ``task_status.started(port)`` once listening (port 0 = any)."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]

    async def on_connection(stream: trio.SocketStream) -> None:
        await _serve_connection(stream, handler)

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, on_connection, listeners)
        task_status.started(bound)
