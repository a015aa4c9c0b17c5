"""Messages, channels and update history of the emulated cluster (UPDATES.md §1, issue 16).

Theory of operation
-------------------
The world (:mod:`.world`) knows accounts and routes pushes; this module adds what produces
*real* updates: private messages between users, broadcast channels with members, and the
history a client needs to catch up.  Its state lives in one :class:`Messaging` object per
world (:func:`messaging`), so :class:`~.world.World` itself is untouched.

Sequences (UPDATES.md §1.1):

* every event of an account's *common box* (new/edited/deleted message, read history) takes
  ``pts_count`` pts from :attr:`Account.pts` and is kept in :attr:`UserBox.events`;
* the *secondary box* (``qts``): :func:`bot_stopped` appends ``updateBotStopped`` events;
* each channel has its own ``pts`` and event list (:class:`ChannelBox`);
* ``seq`` grows by one for every ``updates`` container pushed to an account (edits, deletes
  with revoke, channel-independent multi updates); short forms carry no seq.

Pushes go through :meth:`World.push_update` (which picks the sessions), after the
:class:`PushFaults` of the world had their say: drop, duplicate, reorder (hold one push and
send it after the next one), delay (hold until :meth:`PushFaults.release` or N later pushes).

Difference methods (registered with :func:`.handlers.method`, replacing the empty ones):

=============================  ======  ===================================================
method                         access  answer / errors
=============================  ======  ===================================================
updates.getState               HOME    state(pts, qts, date, seq)
updates.getDifference          HOME    differenceEmpty; difference; differenceSlice when
                                       more than :attr:`Messaging.difference_limit` events
                                       are due; differenceTooLong when ``pts_total_limit``
                                       (default :attr:`Messaging.pts_total_default`) is
                                       exceeded or history was trimmed.  Channels with
                                       unacknowledged posts come as updateChannelTooLong.
updates.getChannelDifference   HOME    channelDifferenceEmpty(final, timeout); channel-
                                       Difference (``final`` unset while more than ``limit``
                                       events remain); channelDifferenceTooLong beyond
                                       :attr:`Messaging.channel_too_long` events;
                                       CHANNEL_INVALID, CHANNEL_PRIVATE,
                                       PERSISTENT_TIMESTAMP_INVALID (pts ahead of the server)
messages.sendMessage           HOME    updateShortSentMessage (user peers), updates (channel)
messages.editMessage           HOME    updates(updateEditMessage / updateEditChannelMessage)
messages.deleteMessages        HOME    messages.affectedMessages (common box)
messages.readHistory           HOME    messages.affectedMessages
channels.deleteMessages        HOME    messages.affectedMessages (channel box)
channels.readHistory           HOME    boolTrue; pushes updateReadChannelInbox (pts_count 0)
=============================  ======  ===================================================

Errors that a real server gives on these methods (``FLOOD_WAIT_X``,
``PERSISTENT_TIMESTAMP_OUTDATED``) are armed with the existing RPC faults:
``world.faults(dc).flood_wait("updates.getChannelDifference", 3)``.

Plain functions for tests and the control channel: :func:`create_channel`, :func:`join`,
:func:`send_message`, :func:`post`, :func:`edit`, :func:`delete`, :func:`read`,
:func:`bot_stopped`, :func:`push_too_long`, :func:`push_channel_too_long`,
:func:`lose_sessions` (the server forgets the sessions, so the client gets
``new_session_created``).  Each is also a command of the emulator's JSON-lines control channel
(:mod:`dcpool.testing.control`; ``{"cmd": "help"}`` lists them) with JSON-able arguments (users
by phone or id, channels by id) and results, so that clients in any language can be tested.
"""

from __future__ import annotations

import random
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs

from .. import tl
from ..errors import LocalProtocolError
from .handlers import Access, Call, method
from .control import Param, control_command

if TYPE_CHECKING:
    from .world import Account, World

__all__ = [
    "Messaging",
    "messaging",
    "PushFaults",
    "UserBox",
    "ChannelBox",
    "BoxEvent",
    "create_channel",
    "join",
    "send_message",
    "post",
    "edit",
    "delete",
    "read",
    "bot_stopped",
    "push_too_long",
    "push_channel_too_long",
    "lose_sessions",
]


@attrs.frozen
class BoxEvent:
    """One event of a box: the update as the box's owner sees it, with its pts."""

    pts: int
    pts_count: int
    date: int
    update: Any


@attrs.define
class StoredMessage:
    id: int
    peer: Any  # Peer of the dialog, as the owner sees it
    from_id: int
    text: str
    date: int
    out: bool
    edit_date: int | None = None
    #: (user_id, message id) of the same message in the other side's box (private chats)
    twin: tuple[int, int] | None = None
    #: messageMedia* (issue 15: messages.sendMedia), None for a text message
    media: Any = None

    def to_tl(self) -> Any:
        # message#7600b9d3 flags:# out:flags.1?true ... id:int from_id:flags.8?Peer
        #   peer_id:Peer ... date:int message:string ... edit_date:flags.15?int ... = Message;
        return tl.api.Message(
            out=self.out or None,
            id=self.id,
            from_id=tl.api.PeerUser(user_id=self.from_id),
            peer_id=self.peer,
            date=self.date,
            message=self.text,
            media=self.media,
            edit_date=self.edit_date,
        )


@attrs.define
class UserBox:
    """The common and secondary boxes of one account (its pts/qts/seq live on the Account)."""

    user_id: int
    events: list[BoxEvent] = attrs.field(factory=list)
    qts_events: list[BoxEvent] = attrs.field(factory=list)
    messages: dict[int, StoredMessage] = attrs.field(factory=dict)
    next_message_id: int = 1
    #: channel id -> channel pts the account is known to have (pushed or differenced)
    channel_seen: dict[int, int] = attrs.field(factory=dict)


@attrs.define
class ChannelBox:
    id: int
    access_hash: int
    title: str
    date: int
    creator: int
    pts: int = 1
    members: set[int] = attrs.field(factory=set)
    events: list[BoxEvent] = attrs.field(factory=list)
    messages: dict[int, StoredMessage] = attrs.field(factory=dict)
    next_message_id: int = 1
    #: ``timeout`` of channel differences (seconds)
    timeout: int = 30

    def to_tl(self) -> Any:
        # channel#d49f34c6 flags:# ... broadcast:flags.5?true ... id:long
        #   access_hash:flags.13?long title:string ... photo:ChatPhoto date:int ... = Chat;
        return tl.api.Channel(
            broadcast=True,
            id=self.id,
            access_hash=self.access_hash,
            title=self.title,
            photo=tl.api.ChatPhotoEmpty(),
            date=self.date,
        )

    def input_channel(self) -> Any:
        return tl.api.InputChannel(channel_id=self.id, access_hash=self.access_hash)

    def peer(self) -> Any:
        return tl.api.PeerChannel(channel_id=self.id)


@attrs.define
class PushFaults:
    """What happens to pushed updates on their way to the sessions (rates use :attr:`rng`)."""

    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    rng: random.Random = attrs.field(factory=lambda: random.Random(0))
    #: the next N pushes are dropped / duplicated / held and sent after the next push
    drop_next: int = 0
    duplicate_next: int = 0
    reorder_next: int = 0
    #: pushes held until release() (delay)
    delaying: bool = False
    held: list[tuple[int, Any]] = attrs.field(factory=list)
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0
    delayed: int = 0
    _swap: list[tuple[int, Any]] = attrs.field(factory=list)

    def clear(self) -> None:
        self.drop_rate = self.duplicate_rate = self.reorder_rate = 0.0
        self.drop_next = self.duplicate_next = self.reorder_next = 0
        self.delaying = False

    def route(self, user_id: int, update: Any) -> list[tuple[int, Any]]:
        """The pushes to hand to the world now, for one push of ``update`` to ``user_id``."""
        if self.delaying:
            self.held.append((user_id, update))
            self.delayed += 1
            return []
        if self.drop_next or (self.drop_rate and self.rng.random() < self.drop_rate):
            self.drop_next = max(0, self.drop_next - 1)
            self.dropped += 1
            return []
        out = [(user_id, update)]
        if self.duplicate_next or (self.duplicate_rate and self.rng.random() < self.duplicate_rate):
            self.duplicate_next = max(0, self.duplicate_next - 1)
            self.duplicated += 1
            out.append((user_id, update))
        if self._swap:
            out += self._swap
            self._swap = []
        elif self.reorder_next or (self.reorder_rate and self.rng.random() < self.reorder_rate):
            self.reorder_next = max(0, self.reorder_next - 1)
            self.reordered += 1
            self._swap, out = out, []
        return out

    def release(self) -> list[tuple[int, Any]]:
        """Stop delaying; the held pushes (and a push waiting to be reordered) go out."""
        self.delaying = False
        out, self.held = self.held + self._swap, []
        self._swap = []
        return out


class Messaging:
    """The message/channel/update-history state of one world (see module docstring)."""

    def __init__(self, world: World) -> None:
        self._world = weakref.ref(world)
        self.boxes: dict[int, UserBox] = {}
        self.channels: dict[int, ChannelBox] = {}
        self.faults = PushFaults()
        #: events per getDifference answer before it becomes a differenceSlice
        self.difference_limit = 100
        #: pts_total_limit when the client gives none
        self.pts_total_default = 1_000_000
        #: pending channel events beyond which getChannelDifference answers TooLong
        self.channel_too_long = 1000
        #: events kept per box (older ones are trimmed: a client behind them gets TooLong)
        self.history_limit = 100_000
        #: the clock used for dates when a helper is called without ``now``
        self.now = 0.0
        self.pushes = 0

    @property
    def world(self) -> World:
        world = self._world()
        assert world is not None
        return world

    def box(self, user_id: int) -> UserBox:
        self.world.user(user_id)
        box = self.boxes.get(user_id)
        if box is None:
            box = self.boxes[user_id] = UserBox(user_id)
        return box

    def channel(self, channel_id: int) -> ChannelBox:
        try:
            return self.channels[channel_id]
        except KeyError:
            raise LocalProtocolError(f"no channel {channel_id}") from None

    # ------------------------------------------------------------------ sequences

    def _add_common(self, user_id: int, make: Any, count: int, date: int) -> BoxEvent:
        """Advance the account's pts by ``count``; ``make(pts, count)`` builds the update."""
        account = self.world.user(user_id)
        account.pts += count
        event = BoxEvent(account.pts, count, date, make(account.pts, count))
        box = self.box(user_id)
        box.events.append(event)
        if len(box.events) > self.history_limit:
            del box.events[: len(box.events) - self.history_limit]
        return event

    def _add_channel(self, channel: ChannelBox, make: Any, count: int, date: int) -> BoxEvent:
        channel.pts += count
        event = BoxEvent(channel.pts, count, date, make(channel.pts, count))
        channel.events.append(event)
        if len(channel.events) > self.history_limit:
            del channel.events[: len(channel.events) - self.history_limit]
        return event

    def _next_seq(self, user_id: int) -> int:
        account = self.world.user(user_id)
        account.seq += 1
        return account.seq

    def push(self, user_id: int, update: Any, now: float) -> None:
        """Push through the faults; returns nothing (a dropped push is not an error)."""
        self.pushes += 1
        for uid, upd in self.faults.route(user_id, update):
            self._deliver(uid, upd, now)

    def release(self, now: float | None = None) -> int:
        """Send the pushes held by a delay (or a pending reorder).  Returns how many."""
        held = self.faults.release()
        for uid, upd in held:
            self._deliver(uid, upd, self.now if now is None else now)
        return len(held)

    def _deliver(self, user_id: int, update: Any, now: float) -> None:
        if self.world.push_update(user_id, update, now=now) > 0:
            # the account has a session that got this push: channels it carries are seen
            for upd in getattr(update, "updates", ()):
                if type(upd).QUALNAME in _CHANNEL_PTS_UPDATES:
                    cid = _channel_id_of(upd)
                    box = self.box(user_id)
                    box.channel_seen[cid] = max(box.channel_seen.get(cid, 0), upd.pts)

    def users_tl(self, ids: Iterable[int], me: int) -> list[Any]:
        out = []
        for uid in dict.fromkeys(ids):
            account = self.world.accounts.get(uid)
            if account is not None:
                out.append(account.to_tl(is_self=uid == me))
        return out


_CHANNEL_PTS_UPDATES = frozenset(
    {"updateNewChannelMessage", "updateEditChannelMessage", "updateDeleteChannelMessages"}
)


def _channel_id_of(update: Any) -> int:
    if hasattr(update, "channel_id"):
        return int(update.channel_id)
    return int(update.message.peer_id.channel_id)


_REGISTRY: weakref.WeakKeyDictionary[Any, Messaging] = weakref.WeakKeyDictionary()


def messaging(world: World) -> Messaging:
    """The :class:`Messaging` state of ``world`` (created on first use)."""
    state = _REGISTRY.get(world)
    if state is None:
        state = _REGISTRY[world] = Messaging(world)
    return state


# --------------------------------------------------------------------------- actions (pure)


def create_channel(
    world: World, creator_id: int, title: str = "channel", *, members: Iterable[int] = (), now: float = 0.0
) -> ChannelBox:
    """A broadcast channel owned by ``creator_id`` with ``members`` (the creator is one)."""
    m = messaging(world)
    world.user(creator_id)
    base = world.add_channel(world.user(creator_id).home_dc, title=title)
    channel = ChannelBox(
        id=base.id, access_hash=base.access_hash, title=title, date=int(now), creator=creator_id
    )
    channel.members.add(creator_id)
    m.channels[channel.id] = channel
    for uid in members:
        join(world, channel.id, uid)
    return channel


def join(world: World, channel_id: int, user_id: int) -> None:
    m = messaging(world)
    channel = m.channel(channel_id)
    world.user(user_id)
    channel.members.add(user_id)
    m.box(user_id).channel_seen[channel_id] = channel.pts


def _peer_user(user_id: int) -> Any:
    return tl.api.PeerUser(user_id=user_id)


def send_message(world: World, from_id: int, to_id: int, text: str, *, now: float | None = None,
                 push_to_sender: bool = False, media: Any = None) -> tuple[BoxEvent, BoxEvent | None]:
    """``from_id`` writes ``text`` to ``to_id``: an event in both common boxes; the receiver
    gets ``updateShortMessage``.  Returns (sender's event, receiver's event or None for self)."""
    m = messaging(world)
    now = m.now if now is None else now
    date = int(now)
    sender = m.box(from_id)
    sent = StoredMessage(sender.next_message_id, _peer_user(to_id), from_id, text, date, out=True,
                         media=media)
    sender.next_message_id += 1
    sender.messages[sent.id] = sent

    def new_message(msg: StoredMessage) -> Any:
        # updateNewMessage#1f2b0afd message:Message pts:int pts_count:int = Update;
        return lambda pts, count: tl.api.UpdateNewMessage(message=msg.to_tl(), pts=pts, pts_count=count)

    ev_sender = m._add_common(from_id, new_message(sent), 1, date)
    if to_id == from_id:
        if push_to_sender:
            m.push(from_id, _short(ev_sender.update, date), now)
        return ev_sender, None
    receiver = m.box(to_id)
    got = StoredMessage(receiver.next_message_id, _peer_user(from_id), from_id, text, date, out=False,
                        media=media)
    receiver.next_message_id += 1
    receiver.messages[got.id] = got
    got.twin, sent.twin = (from_id, sent.id), (to_id, got.id)
    ev_receiver = m._add_common(to_id, new_message(got), 1, date)
    if media is not None:
        # updateShortMessage cannot carry media: a full updates container (issue 15)
        m.push(to_id, _container(m, to_id, [ev_receiver.update], date, users=[from_id, to_id]), now)
        if push_to_sender:
            m.push(from_id, _container(m, from_id, [ev_sender.update], date, users=[from_id, to_id]), now)
        return ev_sender, ev_receiver
    # updateShortMessage#313bc7f8 flags:# out:flags.1?true ... id:int user_id:long message:string
    #   pts:int pts_count:int date:int ... = Updates;
    m.push(
        to_id,
        tl.api.UpdateShortMessage(
            id=got.id, user_id=from_id, message=text, pts=ev_receiver.pts, pts_count=1, date=date
        ),
        now,
    )
    if push_to_sender:
        m.push(
            from_id,
            tl.api.UpdateShortMessage(
                out=True, id=sent.id, user_id=to_id, message=text, pts=ev_sender.pts, pts_count=1, date=date
            ),
            now,
        )
    return ev_sender, ev_receiver


def _short(update: Any, date: int) -> Any:
    # updateShort#78d4dec1 update:Update date:int = Updates;
    return tl.api.UpdateShort(update=update, date=date)


def _container(m: Messaging, user_id: int, updates: list[Any], date: int, *, users: Iterable[int] = (),
               chats: Iterable[ChannelBox] = (), seq: bool = True) -> Any:
    # updates#74ae4240 updates:Vector<Update> users:Vector<User> chats:Vector<Chat> date:int
    #   seq:int = Updates;
    return tl.api.Updates(
        updates=updates,
        users=m.users_tl(users, user_id),
        chats=[c.to_tl() for c in chats],
        date=date,
        seq=m._next_seq(user_id) if seq else 0,
    )


def post(world: World, channel_id: int, text: str, *, from_id: int | None = None,
         now: float | None = None, media: Any = None) -> BoxEvent:
    """A post in a channel: one channel pts, pushed to every member but the author."""
    m = messaging(world)
    now = m.now if now is None else now
    date = int(now)
    channel = m.channel(channel_id)
    author = channel.creator if from_id is None else from_id
    msg = StoredMessage(channel.next_message_id, channel.peer(), author, text, date, out=False,
                        media=media)
    channel.next_message_id += 1
    channel.messages[msg.id] = msg
    # updateNewChannelMessage#62ba04d9 message:Message pts:int pts_count:int = Update;
    event = m._add_channel(
        channel,
        lambda pts, count: tl.api.UpdateNewChannelMessage(message=msg.to_tl(), pts=pts, pts_count=count),
        1,
        date,
    )
    _push_channel(m, channel, event.update, date, now, skip=author)
    return event


def _push_channel(m: Messaging, channel: ChannelBox, update: Any, date: int, now: float,
                  skip: int | None = None) -> None:
    for uid in sorted(channel.members):
        if uid != skip:
            # channel updates come in seq-less containers, with the channel in chats
            m.push(uid, _container(m, uid, [update], date, chats=[channel], seq=False), now)


def edit(world: World, user_id: int, peer: int, message_id: int, text: str, *, channel: bool = False,
         now: float | None = None) -> list[BoxEvent]:
    """``user_id`` edits its message ``message_id`` in the chat with user ``peer`` (or in
    channel ``peer`` with ``channel=True``).  Returns the events created."""
    m = messaging(world)
    now = m.now if now is None else now
    date = int(now)
    if channel:
        ch = m.channel(peer)
        msg = ch.messages.get(message_id)
        if msg is None:
            raise LocalProtocolError(f"no message {message_id} in channel {peer}")
        msg.text, msg.edit_date = text, date
        # updateEditChannelMessage#1b3f4df7 message:Message pts:int pts_count:int = Update;
        event = m._add_channel(
            ch, lambda pts, count: tl.api.UpdateEditChannelMessage(message=msg.to_tl(), pts=pts, pts_count=count),
            1, date,
        )
        _push_channel(m, ch, event.update, date, now, skip=user_id)
        return [event]
    box = m.box(user_id)
    msg = box.messages.get(message_id)
    if msg is None or msg.from_id != user_id:
        raise LocalProtocolError(f"user {user_id} has no own message {message_id}")
    events = []
    targets = [(user_id, msg)]
    if msg.twin is not None:
        other = m.box(msg.twin[0]).messages.get(msg.twin[1])
        if other is not None:
            targets.append((msg.twin[0], other))
    for uid, target in targets:
        target.text, target.edit_date = text, date
        # updateEditMessage#e40370a3 message:Message pts:int pts_count:int = Update;
        ev = m._add_common(
            uid, lambda pts, count, t=target: tl.api.UpdateEditMessage(message=t.to_tl(), pts=pts, pts_count=count),
            1, date,
        )
        events.append(ev)
        if uid != user_id:
            m.push(uid, _container(m, uid, [ev.update], date, users=[user_id]), now)
    return events


def delete(world: World, user_id: int, ids: list[int], *, channel_id: int | None = None,
           revoke: bool = True, now: float | None = None) -> BoxEvent | None:
    """Delete messages: in a channel (``channel_id``) or in ``user_id``'s common box (and, with
    ``revoke``, the twins in the other boxes).  Returns the actor's event (None: nothing)."""
    m = messaging(world)
    now = m.now if now is None else now
    date = int(now)
    if channel_id is not None:
        ch = m.channel(channel_id)
        gone = [i for i in ids if ch.messages.pop(i, None) is not None]
        if not gone:
            return None
        # updateDeleteChannelMessages#c32d5b12 channel_id:long messages:Vector<int> pts:int
        #   pts_count:int = Update;
        event = m._add_channel(
            ch,
            lambda pts, count: tl.api.UpdateDeleteChannelMessages(
                channel_id=ch.id, messages=gone, pts=pts, pts_count=count
            ),
            len(gone),
            date,
        )
        _push_channel(m, ch, event.update, date, now, skip=user_id)
        return event
    box = m.box(user_id)
    mine = [box.messages.pop(i) for i in ids if i in box.messages]
    if not mine:
        return None

    def deleted(gone: list[int]) -> Any:
        # updateDeleteMessages#a20db0e5 messages:Vector<int> pts:int pts_count:int = Update;
        return lambda pts, count: tl.api.UpdateDeleteMessages(messages=gone, pts=pts, pts_count=count)

    event = m._add_common(user_id, deleted([x.id for x in mine]), len(mine), date)
    if revoke:
        others: dict[int, list[int]] = {}
        for msg in mine:
            if msg.twin is not None and msg.twin[1] in m.box(msg.twin[0]).messages:
                others.setdefault(msg.twin[0], []).append(msg.twin[1])
        for uid, their in others.items():
            for i in their:
                del m.box(uid).messages[i]
            ev = m._add_common(uid, deleted(their), len(their), date)
            m.push(uid, _container(m, uid, [ev.update], date), now)
    return event


def read(world: World, user_id: int, peer: int, max_id: int, *, now: float | None = None) -> BoxEvent:
    """``user_id`` reads its chat with ``peer`` up to ``max_id``: updateReadHistoryInbox in its
    box, updateReadHistoryOutbox (pushed, short form) in the peer's."""
    m = messaging(world)
    now = m.now if now is None else now
    date = int(now)
    box = m.box(user_id)
    unread = sum(1 for x in box.messages.values() if not x.out and x.id > max_id
                 and x.peer.user_id == peer)
    # updateReadHistoryInbox#9e84bc99 flags:# folder_id:flags.0?int peer:Peer top_msg_id:flags.1?int
    #   max_id:int still_unread_count:int pts:int pts_count:int = Update;
    event = m._add_common(
        user_id,
        lambda pts, count: tl.api.UpdateReadHistoryInbox(
            peer=_peer_user(peer), max_id=max_id, still_unread_count=unread, pts=pts, pts_count=count
        ),
        1,
        date,
    )
    if peer != user_id:
        read_ids = [x.twin[1] for x in box.messages.values()
                    if not x.out and x.id <= max_id and x.twin is not None and x.twin[0] == peer]
        if read_ids:
            # updateReadHistoryOutbox#2f2f21bf peer:Peer max_id:int pts:int pts_count:int = Update;
            ev = m._add_common(
                peer,
                lambda pts, count: tl.api.UpdateReadHistoryOutbox(
                    peer=_peer_user(user_id), max_id=max(read_ids), pts=pts, pts_count=count
                ),
                1,
                date,
            )
            m.push(peer, _short(ev.update, date), now)
    return event


def bot_stopped(world: World, bot_id: int, user_id: int, *, stopped: bool = True,
                now: float | None = None) -> BoxEvent:
    """A secondary-box (qts) event for ``bot_id``: ``user_id`` stopped (or restarted) it."""
    m = messaging(world)
    now = m.now if now is None else now
    date = int(now)
    account = world.user(bot_id)
    account.qts += 1
    # updateBotStopped#c4870a49 user_id:long date:int stopped:Bool qts:int = Update;
    update = tl.api.UpdateBotStopped(user_id=user_id, date=date, stopped=stopped, qts=account.qts)
    event = BoxEvent(account.qts, 1, date, update)
    m.box(bot_id).qts_events.append(event)
    m.push(bot_id, _container(m, bot_id, [update], date, users=[user_id], seq=False), now)
    return event


def push_too_long(world: World, user_id: int, *, now: float | None = None) -> None:
    """Push ``updatesTooLong`` (the client must call getDifference)."""
    m = messaging(world)
    # updatesTooLong#e317af7e = Updates;
    m.push(user_id, tl.api.UpdatesTooLong(), m.now if now is None else now)


def push_channel_too_long(world: World, user_id: int, channel_id: int, *, now: float | None = None) -> None:
    """Push ``updateChannelTooLong`` for a channel (the client must get its difference)."""
    m = messaging(world)
    ch = m.channel(channel_id)
    date = int(m.now if now is None else now)
    # updateChannelTooLong#108d941f flags:# channel_id:long pts:flags.0?int = Update;
    update = tl.api.UpdateChannelTooLong(channel_id=ch.id, pts=ch.pts)
    m.push(user_id, _container(m, user_id, [update], date, chats=[ch], seq=False), m.now if now is None else now)


def lose_sessions(cluster: Any, user_id: int) -> int:
    """The server forgets every live session of ``user_id`` (its next message gets
    ``new_session_created``; pushes meanwhile are lost).  Returns how many were forgotten."""
    n = 0
    for handle in cluster.world.sessions(user_id):
        core = handle.conn.dc.core
        if core.drop_session(handle.session_key):
            n += 1
    return n


# --------------------------------------------------------------------------- RPC handlers


def _me(call: Call) -> Account:
    assert call.account is not None
    return call.account


def _state(call: Call, account: Account, pts: int | None = None) -> Any:
    # updates.state#a56c2a3e pts:int qts:int date:int seq:int unread_count:int = updates.State;
    return tl.api.updates.State(
        pts=account.pts if pts is None else pts, qts=account.qts, date=call.date, seq=account.seq,
        unread_count=0,
    )


@method("updates.getState", Access.HOME)
def get_state(call: Call, q: Any) -> Any:
    # updates.getState#edd4882a = updates.State;
    me = _me(call)
    m = messaging(call.world)
    box = m.box(me.id)
    for ch in m.channels.values():
        if me.id in ch.members:
            box.channel_seen[ch.id] = ch.pts
    return _state(call, me)


@method("updates.getDifference", Access.HOME)
def get_difference(call: Call, q: Any) -> Any:
    # updates.getDifference#19c2f763 flags:# pts:int pts_limit:flags.1?int
    #   pts_total_limit:flags.0?int date:int qts:int qts_limit:flags.2?int = updates.Difference;
    me = _me(call)
    m = messaging(call.world)
    box = m.box(me.id)
    api = tl.api
    total_limit = getattr(q, "pts_total_limit", None) or m.pts_total_default
    oldest = box.events[0].pts - box.events[0].pts_count if box.events else me.pts
    if q.pts > me.pts:
        raise call.error(400, "PERSISTENT_TIMESTAMP_INVALID")
    if me.pts - q.pts > total_limit or q.pts < oldest:
        # updates.differenceTooLong#4afe8f6d pts:int = updates.Difference;
        return api.updates.DifferenceTooLong(pts=me.pts)
    due = [e for e in box.events if e.pts > q.pts]
    qts_due = [e for e in box.qts_events if e.pts > q.qts]
    channels = []
    for ch in m.channels.values():
        if me.id in ch.members and ch.pts > box.channel_seen.get(ch.id, 0):
            channels.append(ch)
            box.channel_seen[ch.id] = ch.pts
    if not due and not qts_due and not channels:
        # updates.differenceEmpty#5d75a138 date:int seq:int = updates.Difference;
        return api.updates.DifferenceEmpty(date=call.date, seq=me.seq)
    sliced = len(due) > m.difference_limit
    if sliced:
        due = due[: m.difference_limit]
    new_messages = [e.update.message for e in due if type(e.update).QUALNAME == "updateNewMessage"]
    other = [e.update for e in due if type(e.update).QUALNAME != "updateNewMessage"]
    other += [e.update for e in qts_due]
    # updateChannelTooLong#108d941f flags:# channel_id:long pts:flags.0?int = Update;
    other += [api.UpdateChannelTooLong(channel_id=ch.id, pts=ch.pts) for ch in channels]
    users = {me.id}
    for msg in new_messages:
        users.add(msg.from_id.user_id)
        if type(msg.peer_id).QUALNAME == "peerUser":
            users.add(msg.peer_id.user_id)
    pts = due[-1].pts if sliced else me.pts
    state = _state(call, me, pts)
    fields = dict(
        new_messages=new_messages,
        new_encrypted_messages=[],
        other_updates=other,
        chats=[ch.to_tl() for ch in channels],
        users=m.users_tl(users, me.id),
    )
    if sliced:
        # updates.differenceSlice#a8fb1981 ... intermediate_state:updates.State = updates.Difference;
        return api.updates.DifferenceSlice(intermediate_state=state, **fields)
    # updates.difference#f49ca0 new_messages:Vector<Message> new_encrypted_messages:Vector<...>
    #   other_updates:Vector<Update> chats:Vector<Chat> users:Vector<User> state:updates.State
    return api.updates.Difference(state=state, **fields)


def _channel_for(call: Call, ref: Any) -> ChannelBox:
    m = messaging(call.world)
    if type(ref).QUALNAME not in ("inputChannel", "inputPeerChannel"):
        raise call.error(400, "CHANNEL_INVALID")
    ch = m.channels.get(ref.channel_id)
    if ch is None or ch.access_hash != ref.access_hash:
        raise call.error(400, "CHANNEL_INVALID")
    if _me(call).id not in ch.members:
        raise call.error(406, "CHANNEL_PRIVATE")
    return ch


@method("updates.getChannelDifference", Access.HOME)
def get_channel_difference(call: Call, q: Any) -> Any:
    # updates.getChannelDifference#3173d78 flags:# force:flags.0?true channel:InputChannel
    #   filter:ChannelMessagesFilter pts:int limit:int = updates.ChannelDifference;
    me = _me(call)
    m = messaging(call.world)
    ch = _channel_for(call, q.channel)
    api = tl.api
    if q.pts <= 0 or q.pts > ch.pts:
        raise call.error(400, "PERSISTENT_TIMESTAMP_INVALID")
    box = m.box(me.id)
    limit = max(1, min(int(q.limit), 100_000))
    oldest = ch.events[0].pts - ch.events[0].pts_count if ch.events else ch.pts
    due = [e for e in ch.events if e.pts > q.pts]
    if q.pts == ch.pts:
        box.channel_seen[ch.id] = ch.pts
        # updates.channelDifferenceEmpty#3e11affb flags:# final:flags.0?true pts:int
        #   timeout:flags.1?int = updates.ChannelDifference;
        return api.updates.ChannelDifferenceEmpty(final=True, pts=ch.pts, timeout=ch.timeout)
    if q.pts < oldest or len(due) > m.channel_too_long:
        box.channel_seen[ch.id] = ch.pts
        latest = sorted(ch.messages.values(), key=lambda x: x.id)[-limit:]
        # dialog#fc89f7f3 flags:# ... peer:Peer top_message:int read_inbox_max_id:int
        #   read_outbox_max_id:int unread_count:int unread_mentions_count:int
        #   unread_reactions_count:int unread_poll_votes_count:int notify_settings:PeerNotifySettings
        #   pts:flags.0?int ... = Dialog;
        dialog = api.Dialog(
            peer=ch.peer(),
            top_message=latest[-1].id if latest else 0,
            read_inbox_max_id=0,
            read_outbox_max_id=0,
            unread_count=len(latest),
            unread_mentions_count=0,
            unread_reactions_count=0,
            unread_poll_votes_count=0,
            notify_settings=api.PeerNotifySettings(),
            pts=ch.pts,
        )
        # updates.channelDifferenceTooLong#a4bcc6fe flags:# final:flags.0?true timeout:flags.1?int
        #   dialog:Dialog messages:Vector<Message> chats:Vector<Chat> users:Vector<User>
        return api.updates.ChannelDifferenceTooLong(
            final=True, timeout=ch.timeout, dialog=dialog, messages=[x.to_tl() for x in latest],
            chats=[ch.to_tl()], users=m.users_tl({x.from_id for x in latest}, me.id),
        )
    final = len(due) <= limit
    due = due[:limit]
    pts = due[-1].pts
    if final:
        box.channel_seen[ch.id] = max(box.channel_seen.get(ch.id, 0), pts)
    new_messages = [e.update.message for e in due if type(e.update).QUALNAME == "updateNewChannelMessage"]
    # updates.channelDifference#2064674e flags:# final:flags.0?true pts:int timeout:flags.1?int
    #   new_messages:Vector<Message> other_updates:Vector<Update> chats:Vector<Chat>
    #   users:Vector<User> = updates.ChannelDifference;
    return api.updates.ChannelDifference(
        final=final or None,
        pts=pts,
        timeout=ch.timeout if final else None,
        new_messages=new_messages,
        other_updates=[e.update for e in due if type(e.update).QUALNAME != "updateNewChannelMessage"],
        chats=[ch.to_tl()],
        users=m.users_tl({x.from_id.user_id for x in new_messages}, me.id),
    )


def _target_user(call: Call, peer: Any) -> int | None:
    """The user id of a user peer (self included), None for a channel peer."""
    name = type(peer).QUALNAME
    if name == "inputPeerSelf":
        return _me(call).id
    if name == "inputPeerUser":
        account = call.world.accounts.get(peer.user_id)
        if account is None or account.access_hash != peer.access_hash:
            raise call.error(400, "PEER_ID_INVALID")
        return account.id
    if name == "inputPeerChannel":
        return None
    raise call.error(400, "PEER_ID_INVALID")


@method("messages.sendMessage", Access.HOME)
def send_message_rpc(call: Call, q: Any) -> Any:
    # messages.sendMessage#fef48f62 flags:# ... peer:InputPeer ... message:string random_id:long
    #   ... = Updates;
    me = _me(call)
    m = messaging(call.world)
    if not q.message:
        raise call.error(400, "MESSAGE_EMPTY")
    target = _target_user(call, q.peer)
    if target is None:
        ch = _channel_for(call, q.peer)
        if ch.creator != me.id:
            raise call.error(403, "CHAT_WRITE_FORBIDDEN")
        event = post(call.world, ch.id, q.message, from_id=me.id, now=call.now)
        # updateMessageID#4e90bfd6 id:int random_id:long = Update;
        return _container(
            m, me.id,
            [tl.api.UpdateMessageID(id=event.update.message.id, random_id=q.random_id), event.update],
            call.date, users=[me.id], chats=[ch], seq=False,
        )
    ev, _ = send_message(call.world, me.id, target, q.message, now=call.now)
    # updateShortSentMessage#9015e101 flags:# out:flags.1?true id:int pts:int pts_count:int
    #   date:int ... = Updates;
    return tl.api.UpdateShortSentMessage(
        out=True, id=ev.update.message.id, pts=ev.pts, pts_count=ev.pts_count, date=call.date
    )


@method("messages.editMessage", Access.HOME)
def edit_message_rpc(call: Call, q: Any) -> Any:
    # messages.editMessage#b106e66c flags:# ... peer:InputPeer id:int message:flags.11?string ...
    me = _me(call)
    m = messaging(call.world)
    target = _target_user(call, q.peer)
    text = q.message or ""
    if target is None:
        ch = _channel_for(call, q.peer)
        if q.id not in ch.messages or ch.messages[q.id].from_id != me.id:
            raise call.error(400, "MESSAGE_ID_INVALID")
        events = edit(call.world, me.id, ch.id, q.id, text, channel=True, now=call.now)
        return _container(m, me.id, [events[0].update], call.date, chats=[ch], seq=False)
    msg = m.box(me.id).messages.get(q.id)
    if msg is None or msg.from_id != me.id:
        raise call.error(400, "MESSAGE_ID_INVALID")
    events = edit(call.world, me.id, target, q.id, text, now=call.now)
    return _container(m, me.id, [events[0].update], call.date, users=[me.id, target])


def _affected(event: BoxEvent | None, pts_now: int) -> Any:
    # messages.affectedMessages#84d19185 pts:int pts_count:int = messages.AffectedMessages;
    if event is None:
        return tl.api.messages.AffectedMessages(pts=pts_now, pts_count=0)
    return tl.api.messages.AffectedMessages(pts=event.pts, pts_count=event.pts_count)


@method("messages.deleteMessages", Access.HOME)
def delete_messages_rpc(call: Call, q: Any) -> Any:
    # messages.deleteMessages#e58e95d2 flags:# revoke:flags.0?true id:Vector<int>
    #   = messages.AffectedMessages;
    me = _me(call)
    event = delete(call.world, me.id, list(q.id), revoke=bool(q.revoke), now=call.now)
    return _affected(event, me.pts)


@method("channels.deleteMessages", Access.HOME)
def channel_delete_messages_rpc(call: Call, q: Any) -> Any:
    # channels.deleteMessages#84c1fd4e channel:InputChannel id:Vector<int> = messages.AffectedMessages;
    me = _me(call)
    ch = _channel_for(call, q.channel)
    if ch.creator != me.id:
        raise call.error(403, "MESSAGE_DELETE_FORBIDDEN")
    event = delete(call.world, me.id, list(q.id), channel_id=ch.id, now=call.now)
    return _affected(event, ch.pts)


@method("messages.readHistory", Access.HOME)
def read_history_rpc(call: Call, q: Any) -> Any:
    # messages.readHistory#e306d3a peer:InputPeer max_id:int = messages.AffectedMessages;
    me = _me(call)
    target = _target_user(call, q.peer)
    if target is None:
        raise call.error(400, "PEER_ID_INVALID")
    return _affected(read(call.world, me.id, target, q.max_id, now=call.now), me.pts)


@method("channels.readHistory", Access.HOME)
def channel_read_history_rpc(call: Call, q: Any) -> Any:
    # channels.readHistory#cc104937 channel:InputChannel max_id:int = Bool;
    me = _me(call)
    m = messaging(call.world)
    ch = _channel_for(call, q.channel)
    unread = sum(1 for x in ch.messages if x > q.max_id)
    # updateReadChannelInbox#922e6e10 flags:# folder_id:flags.0?int channel_id:long max_id:int
    #   still_unread_count:int pts:int = Update;   (no pts_count: it does not advance the box)
    update = tl.api.UpdateReadChannelInbox(
        channel_id=ch.id, max_id=q.max_id, still_unread_count=unread, pts=ch.pts
    )
    m.push(me.id, _short(update, call.date), call.now)
    return True


# --------------------------------------------------------------------------- control channel


def _user_id(world: World, user: int | str) -> int:
    """A user given by id or by phone (reserved test numbers come into existence)."""
    if isinstance(user, int):
        return world.user(user).id
    account = world.user_by_phone(str(user))
    if account is None:
        raise LocalProtocolError(f"no user with phone {user}")
    return account.id


def _event_json(event: BoxEvent | None) -> dict[str, Any] | None:
    if event is None:
        return None
    message = getattr(event.update, "message", None)
    return {"pts": event.pts, "pts_count": event.pts_count, "message_id": getattr(message, "id", None)}


def _cmd_send_message(world: World, from_user: int | str, to_user: int | str, text: str) -> Any:
    sent, received = send_message(world, _user_id(world, from_user), _user_id(world, to_user), text)
    return {"sender": _event_json(sent), "receiver": _event_json(received)}


def _cmd_create_channel(world: World, creator: int | str, title: str = "channel",
                        members: list[int | str] | None = None) -> Any:
    ch = create_channel(world, _user_id(world, creator), title,
                        members=[_user_id(world, u) for u in members or ()])
    return {"channel_id": ch.id, "access_hash": ch.access_hash, "pts": ch.pts}


def _cmd_join(world: World, channel_id: int, user: int | str) -> Any:
    join(world, channel_id, _user_id(world, user))
    return {"channel_id": channel_id, "pts": messaging(world).channel(channel_id).pts}


def _cmd_post(world: World, channel_id: int, text: str) -> Any:
    return _event_json(post(world, channel_id, text))


def _cmd_edit(world: World, user: int | str, peer: int | str, message_id: int, text: str,
              channel: bool = False) -> Any:
    target = int(peer) if channel else _user_id(world, peer)
    return [_event_json(e) for e in edit(world, _user_id(world, user), target, message_id, text, channel=channel)]


def _cmd_delete(world: World, user: int | str, ids: list[int], channel_id: int | None = None,
                revoke: bool = True) -> Any:
    return _event_json(delete(world, _user_id(world, user), list(ids), channel_id=channel_id, revoke=revoke))


def _cmd_read(world: World, user: int | str, peer: int | str, max_id: int) -> Any:
    return _event_json(read(world, _user_id(world, user), _user_id(world, peer), max_id))


def _cmd_push_too_long(world: World, user: int | str) -> Any:
    push_too_long(world, _user_id(world, user))
    return None


def _cmd_push_faults(world: World, drop: float | None = None, duplicate: float | None = None,
                     reorder: float | None = None, drop_next: int | None = None,
                     duplicate_next: int | None = None, reorder_next: int | None = None,
                     delay: bool | None = None, seed: int | None = None) -> Any:
    """Arm (or with no argument, report) the faults on pushed updates."""
    m = messaging(world)
    f = m.faults
    if seed is not None:
        f.rng = random.Random(seed)
    for name, value in (("drop_rate", drop), ("duplicate_rate", duplicate), ("reorder_rate", reorder),
                        ("drop_next", drop_next), ("duplicate_next", duplicate_next),
                        ("reorder_next", reorder_next)):
        if value is not None:
            setattr(f, name, value)
    released = 0
    if delay is True:
        f.delaying = True
    elif delay is False:
        released = m.release()
    return {"dropped": f.dropped, "duplicated": f.duplicated, "reordered": f.reordered,
            "delayed": f.delayed, "released": released}


def _cmd_state(world: World, user: int | str) -> Any:
    account = world.user(_user_id(world, user))
    return {"pts": account.pts, "qts": account.qts, "seq": account.seq}


# Each command is also a JSON-lines command of ``dcpool emulator --control``
# (:mod:`dcpool.testing.control`), so clients in any language can script the same scenarios.
_USER = "a user id, or a phone number (reserved test numbers come into existence)"
_CONTROL = (
    ("send_message", _cmd_send_message, "a test user sends a private message to another",
     (Param("from_user", "any", _USER, required=True), Param("to_user", "any", _USER, required=True),
      Param("text", "str", "the message text", required=True))),
    ("create_channel", _cmd_create_channel, "a user creates a broadcast channel",
     (Param("creator", "any", _USER, required=True), Param("title", "str", "its title"),
      Param("members", "list", "users that join it at once"))),
    ("join", _cmd_join, "a user joins a channel",
     (Param("channel_id", "int", "the channel", required=True), Param("user", "any", _USER, required=True))),
    ("post", _cmd_post, "post to a channel (advances the channel's pts)",
     (Param("channel_id", "int", "the channel", required=True), Param("text", "str", "the text", required=True))),
    ("edit", _cmd_edit, "edit a message (private, or a channel post with channel=true)",
     (Param("user", "any", _USER, required=True), Param("peer", "any", "the chat: a user, or the channel id", required=True),
      Param("message_id", "int", "the message", required=True), Param("text", "str", "the new text", required=True),
      Param("channel", "bool", "peer is a channel id"))),
    ("delete", _cmd_delete, "delete messages (private, or in a channel)",
     (Param("user", "any", _USER, required=True), Param("ids", "list", "message ids", required=True),
      Param("channel_id", "int", "the channel, for channel posts"), Param("revoke", "bool", "delete for both sides"))),
    ("read", _cmd_read, "a user reads a private chat up to max_id",
     (Param("user", "any", _USER, required=True), Param("peer", "any", _USER, required=True),
      Param("max_id", "int", "the last message read", required=True))),
    ("push_too_long", _cmd_push_too_long, "push updatesTooLong to a user",
     (Param("user", "any", _USER, required=True),)),
    ("push_faults", _cmd_push_faults, "arm (or, with no parameter, report) faults on pushed updates",
     (Param("drop", "float", "drop rate 0..1"), Param("duplicate", "float", "duplicate rate 0..1"),
      Param("reorder", "float", "reorder rate 0..1"), Param("drop_next", "int", "drop the next N pushes"),
      Param("duplicate_next", "int", "duplicate the next N pushes"), Param("reorder_next", "int", "reorder the next N pushes"),
      Param("delay", "bool", "true: hold pushes; false: release the held ones"), Param("seed", "int", "seed of the rates"))),
    ("updates_state", _cmd_state, "a user's pts, qts and seq",
     (Param("user", "any", _USER, required=True),)),
)


def _registered(fn: Any) -> Any:
    def command(ctl: Any, **arguments: Any) -> Any:
        return fn(ctl.world, **arguments)
    return command


for _name, _fn, _help, _params in _CONTROL:
    control_command(_name, _help, *_params)(_registered(_fn))


def _cmd_lose_sessions(ctl: Any, user: int | str) -> Any:
    return {"sessions_lost": lose_sessions(ctl.cluster, _user_id(ctl.world, user))}


control_command("lose_sessions", "the server forgets every session of a user (new_session_created)",
                Param("user", "any", _USER, required=True))(_cmd_lose_sessions)
