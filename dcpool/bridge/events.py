"""Outbox events: what the bridge delivers, and how updates become them.

Every event has a monotonic ``id`` (assigned by the outbox), an ``account``, a Pusher-style
``event`` name (``message``, ``messageStatus`` or ``dcpool:event``), a finer ``type``, the
``chat`` queue key that orders webhook deliveries (one in flight per chat, EVENTS.md §1.2), a
``dedupe_key`` that is stable across redeliveries, and a JSON ``data`` payload.

Payloads (close to the ChatApp/Pusher examples, EVENTS.md §1.3)::

    message        {"type": "new"|"edited", "id": 42, "time": 1700000000,
                    "chat": {"id": 7, "type": "user"|"group"|"channel", "title": ..., "username": ...},
                    "from": {"id": 7, "name": "Ann Lee", "username": "ann", "phone": "99966..."},
                    "out": false, "text": "hi",
                    "media": {"kind": "photo"|"document"|..., "dc_id": 2, "id": 123,
                              "access_hash": ..., "file_reference": "<hex>", "size": ...} | null,
                    "replyTo": {"id": 41} | null,
                    "forward": {"fromId": ..., "fromName": ..., "date": ...} | null}
    message        {"type": "deleted", "ids": [41, 42], "chat": {...} | null}
    messageStatus  {"status": "read", "direction": "in"|"out", "chat": {...}, "maxId": 42}
    dcpool:event   {"type": "migrated"|"reconnect"|"flood_wait"|"logged_out"|"state_lost"|
                    "webhook_dropped"|..., "dcId": 2, ...}

The translation is a pure function of the contract's ``Update`` (sans-IO).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

__all__ = ["NewEvent", "OutboxEvent", "events_from_update", "event_from_pool_event",
           "state_lost_event", "EVENT_NAMES"]

EVENT_NAMES = ("message", "messageStatus", "dcpool:event")


@attrs.frozen
class NewEvent:
    """An event before the outbox numbered it."""

    event: str
    type: str
    chat: str | None
    dedupe_key: str
    data: Mapping[str, Any]


@attrs.frozen
class OutboxEvent:
    id: int
    account: str
    event: str
    type: str
    chat: str | None
    dedupe_key: str
    time: float
    data: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The envelope webhooks POST and SSE sends (one JSON object)."""
        return {"id": self.id, "account": self.account, "event": self.event, "type": self.type,
                "time": self.time, "data": dict(self.data)}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"), sort_keys=True)


def _name(obj: Any) -> str:
    return type(obj).__name__


def _peer_key(peer: Any) -> tuple[str, int] | None:
    kind = _name(peer)
    if kind == "PeerUser":
        return ("user", peer.user_id)
    if kind == "PeerChat":
        return ("group", peer.chat_id)
    if kind == "PeerChannel":
        return ("channel", peer.channel_id)
    return None


def _index(users: Iterable[Any], chats: Iterable[Any]) -> dict[tuple[str, int], Any]:
    out: dict[tuple[str, int], Any] = {}
    for user in users:
        if hasattr(user, "id"):
            out[("user", user.id)] = user
    for chat in chats:
        if not hasattr(chat, "id"):
            continue
        kind = "channel" if _name(chat).startswith("Channel") else "group"
        out[(kind, chat.id)] = chat
    return out


def _person(user: Any, uid: int) -> dict[str, Any]:
    if user is None:
        return {"id": uid, "name": None, "username": None, "phone": None}
    name = " ".join(p for p in (getattr(user, "first_name", None), getattr(user, "last_name", None)) if p)
    return {"id": uid, "name": name or None, "username": getattr(user, "username", None),
            "phone": getattr(user, "phone", None)}


def _chat(key: tuple[str, int] | None, known: Mapping[tuple[str, int], Any]) -> dict[str, Any] | None:
    if key is None:
        return None
    obj = known.get(key)
    out: dict[str, Any] = {"id": key[1], "type": key[0]}
    if key[0] == "user":
        person = _person(obj, key[1])
        out["title"] = person["name"]
        out["username"] = person["username"]
    else:
        out["title"] = getattr(obj, "title", None)
        out["username"] = getattr(obj, "username", None)
    return out


def _media(media: Any) -> dict[str, Any] | None:
    if media is None or _name(media) == "MessageMediaEmpty":
        return None
    kind = _name(media).removeprefix("MessageMedia").lower()
    inner = getattr(media, "photo", None) or getattr(media, "document", None)
    out: dict[str, Any] = {"kind": kind}
    if inner is not None and hasattr(inner, "id"):
        ref = getattr(inner, "file_reference", b"") or b""
        out.update({"id": inner.id, "access_hash": getattr(inner, "access_hash", None),
                    "dc_id": getattr(inner, "dc_id", None),
                    "file_reference": ref.hex() if isinstance(ref, bytes) else None,
                    "size": getattr(inner, "size", None),
                    "mime_type": getattr(inner, "mime_type", None)})
    return out


def _message(message: Any, users: Iterable[Any], chats: Iterable[Any], kind: str) -> tuple[str | None, dict[str, Any]]:
    known = _index(users, chats)
    chat_key = _peer_key(getattr(message, "peer_id", None))
    from_key = _peer_key(getattr(message, "from_id", None)) if getattr(message, "from_id", None) else None
    if from_key is None and chat_key is not None and chat_key[0] == "user" and not getattr(message, "out", False):
        from_key = chat_key  # a private chat's incoming message comes from the peer
    reply = getattr(message, "reply_to", None)
    fwd = getattr(message, "fwd_from", None)
    data = {
        "type": kind,
        "id": message.id,
        "time": getattr(message, "date", None),
        "chat": _chat(chat_key, known),
        "from": _person(known.get(from_key), from_key[1]) if from_key else None,
        "out": bool(getattr(message, "out", False)),
        "text": getattr(message, "message", None),
        "media": _media(getattr(message, "media", None)),
        "replyTo": ({"id": reply.reply_to_msg_id} if reply is not None and getattr(reply, "reply_to_msg_id", None) else None),
        "forward": ({"fromId": (_peer_key(fwd.from_id) or (None, None))[1] if fwd.from_id else None,
                     "fromName": fwd.from_name, "date": fwd.date} if fwd is not None else None),
    }
    return (f"{chat_key[0]}:{chat_key[1]}" if chat_key else None), data


def events_from_update(item: Any, known_users: Iterable[Any] = ()) -> list[NewEvent]:
    """The events one contract ``Update`` produces (possibly none: unknown kinds are skipped
    here and counted by the caller).  ``known_users`` (users seen earlier on the account) name
    senders that the update itself does not carry: ``updateShortMessage`` comes without users."""
    upd = item.update
    kind = _name(upd)
    key = item.dedupe_key
    users = (*known_users, *item.users)  # the update's own users win (_index keeps the last)
    if kind in ("UpdateNewMessage", "UpdateNewChannelMessage", "UpdateEditMessage", "UpdateEditChannelMessage"):
        if _name(upd.message) == "MessageEmpty":
            return []
        chat, data = _message(upd.message, users, item.chats, "edited" if "Edit" in kind else "new")
        return [NewEvent("message", f"message.{data['type']}", chat, key, data)]
    if kind in ("UpdateDeleteMessages", "UpdateDeleteChannelMessages"):
        channel = getattr(upd, "channel_id", None)
        chat = f"channel:{channel}" if channel is not None else None
        data = {"type": "deleted", "ids": list(upd.messages),
                "chat": {"id": channel, "type": "channel"} if channel is not None else None}
        return [NewEvent("message", "message.deleted", chat, key, data)]
    if kind in ("UpdateReadHistoryInbox", "UpdateReadHistoryOutbox", "UpdateReadChannelInbox", "UpdateReadChannelOutbox"):
        direction = "out" if "Outbox" in kind else "in"
        if hasattr(upd, "peer"):
            ck = _peer_key(upd.peer)
        else:
            ck = ("channel", upd.channel_id)
        known = _index(users, item.chats)
        data = {"status": "read", "direction": direction, "chat": _chat(ck, known), "maxId": upd.max_id}
        return [NewEvent("messageStatus", f"status.read_{direction}", f"{ck[0]}:{ck[1]}" if ck else None, key, data)]
    return []


def state_lost_event(item: Any) -> NewEvent:
    box = item.box
    state = item.state_after.to_json()
    # keyed by the state it jumped to: stable across a redelivery after a restart
    key = "state_lost:{}:{}".format(box, json.dumps(state, sort_keys=True, separators=(",", ":")))
    return NewEvent("dcpool:event", "state_lost", None, key,
                    {"type": "state_lost", "box": box, "state": state})


def event_from_pool_event(event: Any, seq: int) -> NewEvent | None:
    """A pool lifecycle event (``dcpool.pool.PoolEvent``) as an outbox event, or None for
    chatty kinds not worth a durable record."""
    kinds = {"migrated": "migrated", "home_changed": "home_changed", "connected": "reconnect",
             "transfer_started": "transfer_started", "transfer_done": "transfer_done",
             "transfer_failed": "transfer_failed", "transfer_flood_wait": "flood_wait",
             "logged_out": "logged_out", "flood_wait": "flood_wait"}
    name = kinds.get(event.kind)
    if name is None:
        return None
    # event.time is the pool's monotonic clock: not meaningful to a consumer, left out
    data = {"type": name, "dcId": event.dc_id,
            **{k: v for k, v in dict(event.data).items() if isinstance(v, (int, float, str, bool, type(None)))}}
    return NewEvent("dcpool:event", f"pool.{name}", None, f"pool:{seq}:{event.kind}:{event.time!r}", data)
