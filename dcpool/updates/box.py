"""The sans-IO updates state machine: sequence boxes, gap buffers, deadlines (UPDATES.md §3).

Theory of operation
-------------------
:class:`MessageBox` holds an account's update state and decides everything; it never awaits,
sleeps or sends.  Its driver (:mod:`.driver`) feeds it

* ``receive_updates(obj, now)``: an ``Updates`` object pushed by the home DC, or the result of
  the client's own request (``sendMessage`` answers ``updateShortSentMessage``/``updates``);
* ``receive_affected(obj, now, channel_id)``: ``messages.affected*`` results (pts, pts_count);
* ``resync(now)``: the home connection reconnected, ``new_session_created``, the home DC
  changed, or the pool lost pushes: the common box needs a difference;
* ``check_deadlines(now)``: time passed (gap waits, the 15-minute idle rule, retry backoff);
* the outcome of a request it asked for: ``state_result``, ``difference_result``,
  ``channel_difference_result`` or ``request_failed``;

and asks it ``next_requests(now)`` (the differences to fetch: :class:`GetState`,
:class:`GetDifference`, :class:`GetChannelDifference`), ``next_deadline()`` (when to call
``check_deadlines``) and ``take(now)`` (the next :class:`~.state.Update` /
:class:`~.state.StateLost` for the consumer, in order per box).

Entries (UPDATES.md §3.1): ``COMMON`` (pts), ``SECONDARY`` (qts) and one per channel (its
pts).  Each has a local pts (None: unknown), a gap buffer with a deadline, a ``diffing``
flag, an in-flight flag and a retry time.

Rules, in the order they are applied to an incoming ``Updates``:

1. Output full (``max_pending`` items the consumer has not taken): the container is dropped
   and every box it touches is marked for a difference, fetched once the consumer catches up:
   memory stays bounded however far behind the consumer falls.
2. ``updatesTooLong`` → common difference.
3. Short forms become one-update containers with ``seq = 0``.
4. ``seq_start != 0``: ``local+1 == seq_start`` apply; ``>`` duplicate container (dropped);
   ``<`` the container waits ``gap_timeout`` in the seq buffer, then a common difference.
5. Updates carrying pts/qts first, sorted by (box, pts - pts_count); the rest after.
6. ``updateChannelTooLong`` → channel difference.  A box being differenced postpones its
   updates (TDLib) and re-checks them after the difference.
7. Unknown box: in sync (``local = pts - count``; for ``count == 0`` then ``local = pts - 1``).
8. ``local + count == pts`` apply; ``>`` duplicate (dropped, counted); ``<`` gap: buffered,
   deadline ``now + gap_timeout`` at the first one; the buffer is retried after every batch.
   A buffer over ``max_buffer`` is dropped for a difference at once.

Differences: one common difference at a time; at most ``max_channel_diffs`` channel
differences, one per channel.  ``differenceSlice`` and non-final channel differences loop at
once; ``*TooLong`` sets the new pts and emits :class:`~.state.StateLost` (channel: followed
by the messages the server sent as the latest state).  Failures come back classified
(:class:`Failure`): wait the given time (FLOOD_WAIT), back off 1, 2, 4 … 60 s with jitter
(PERSISTENT_TIMESTAMP_OUTDATED, 5xx, timeouts), reset the state with getState
(PERSISTENT_TIMESTAMP_INVALID), or forget the channel (CHANNEL_PRIVATE / _INVALID).

Idle: no common update for ``idle_timeout`` (15 min) → common difference.  Channels are not
polled when idle (a final channel difference's ``timeout`` is not a ban either, gotd#1852,
and polling every channel is what makes gotd#1800 costly).

Every delivered item carries ``state_after``: the whole state once it is applied.  Items of a
difference carry the state before it, except the last one, which carries the state after it,
so a consumer that acknowledges part of a difference and crashes fetches it again.
"""

from __future__ import annotations

import enum
import hashlib
import random
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from .. import tl
from .state import StateLost, Update, UpdatesState, UpdatesStatistics

__all__ = [
    "MessageBox",
    "COMMON",
    "SECONDARY",
    "GetState",
    "GetDifference",
    "GetChannelDifference",
    "Request",
    "Failure",
    "dedupe_key",
]

api = tl.api

COMMON = "common"
SECONDARY = "secondary"
EntryKey = str | int


@attrs.frozen
class GetState:
    """Ask ``updates.getState`` (no stored state, or the stored one was refused)."""


@attrs.frozen
class GetDifference:
    pts: int
    date: int
    qts: int
    pts_total_limit: int | None = None

    def to_tl(self) -> Any:
        # updates.getDifference#19c2f763 flags:# pts:int pts_limit:flags.1?int
        #   pts_total_limit:flags.0?int date:int qts:int qts_limit:flags.2?int = updates.Difference;
        return api.updates.GetDifference(
            pts=self.pts, date=self.date, qts=self.qts, pts_total_limit=self.pts_total_limit
        )


@attrs.frozen
class GetChannelDifference:
    channel_id: int
    access_hash: int
    pts: int
    limit: int

    def to_tl(self) -> Any:
        # updates.getChannelDifference#3173d78 flags:# force:flags.0?true channel:InputChannel
        #   filter:ChannelMessagesFilter pts:int limit:int = updates.ChannelDifference;
        return api.updates.GetChannelDifference(
            channel=api.InputChannel(channel_id=self.channel_id, access_hash=self.access_hash),
            filter=api.ChannelMessagesFilterEmpty(),
            pts=self.pts,
            limit=self.limit,
        )


Request = GetState | GetDifference | GetChannelDifference


class Failure(enum.Enum):
    #: wait the given seconds and ask again (FLOOD_WAIT_X)
    RETRY_AFTER = "retry_after"
    #: transient (PERSISTENT_TIMESTAMP_OUTDATED, RPC_CALL_FAIL, 5xx, timeouts): back off
    BACKOFF = "backoff"
    #: the server refuses our position (PERSISTENT_TIMESTAMP_INVALID): start from getState
    RESET = "reset"
    #: the channel is gone for us (CHANNEL_PRIVATE, CHANNEL_INVALID): forget it
    FORGET = "forget"


@attrs.define
class _Item:
    """One update on its way through a box."""

    key: EntryKey
    pts: int
    count: int
    update: Any  # None for a pts-only marker (affectedMessages, updateShortSentMessage)
    users: tuple[Any, ...]
    chats: tuple[Any, ...]
    arrived: float
    #: it came in a difference (channel updates of ``updates.difference``), not in a push
    from_difference: bool = False


@attrs.define
class _Entry:
    pts: int | None = None
    buffer: list[_Item] = attrs.field(factory=list)
    gap_deadline: float | None = None
    diffing: bool = False
    in_flight: bool = False
    retry_at: float = 0.0
    backoff: float = 0.0


_CHANNEL_UPDATES = frozenset(
    {
        "updateNewChannelMessage",
        "updateEditChannelMessage",
        "updateDeleteChannelMessages",
        "updateChannelWebPage",
        "updateReadChannelInbox",
        "updatePinnedChannelMessages",
        "updateChannelTooLong",
        "updateChannelMessageViews",
        "updateChannelMessageForwards",
        "updateReadChannelDiscussionInbox",
        "updateReadChannelDiscussionOutbox",
    }
)
_NEW_MESSAGE = frozenset({"updateNewMessage", "updateNewChannelMessage"})


def _qual(obj: Any) -> str:
    return getattr(type(obj), "QUALNAME", "")


def _channel_of(update: Any) -> int | None:
    name = _qual(update)
    if name not in _CHANNEL_UPDATES:
        return None
    cid = getattr(update, "channel_id", None)
    if cid is None:
        message = getattr(update, "message", None)
        peer = getattr(message, "peer_id", None)
        cid = getattr(peer, "channel_id", None)
    return None if cid is None else int(cid)


def _sequence_of(update: Any) -> tuple[EntryKey, int, int] | None:
    """(entry, pts, count) of an update that belongs to a sequence, else None."""
    qts = getattr(update, "qts", None)
    if isinstance(qts, int) and _qual(update) != "updateChannelTooLong":
        return (SECONDARY, qts, 1) if qts else None
    pts = getattr(update, "pts", None)
    if not isinstance(pts, int) or pts == 0:
        return None  # pts == 0: outside any sequence (gotd 5e4cd68, grammers NO_PTS)
    count = getattr(update, "pts_count", None) or 0
    channel = _channel_of(update)
    return (COMMON if channel is None else channel), pts, count


def dedupe_key(box: int | None, update: Any, pts: int | None = None) -> str:
    """A key that is the same whichever way (push or difference) an update arrives."""
    where = "c" if box is None else str(box)
    name = _qual(update)
    if name in _NEW_MESSAGE:
        return f"{where}:m:{update.message.id}"
    qts = getattr(update, "qts", None)
    if isinstance(qts, int) and qts:
        return f"q:{qts}"
    if pts:
        return f"{where}:p:{pts}"
    digest = hashlib.sha1(update.to_bytes()).hexdigest()[:20]
    return f"{where}:h:{digest}"


def _short_to_update(obj: Any) -> Any:
    """The Update inside a short ``Updates`` form (UPDATES.md §3.1 step 2)."""
    name = _qual(obj)
    if name == "updateShortMessage":
        # updateShortMessage#313bc7f8 flags:# out:flags.1?true ... id:int user_id:long
        #   message:string pts:int pts_count:int date:int ... = Updates;
        peer = api.PeerUser(user_id=obj.user_id)
        message = api.Message(
            out=obj.out or None, mentioned=obj.mentioned or None, silent=obj.silent or None,
            id=obj.id, from_id=None if obj.out else peer, peer_id=peer, date=obj.date,
            message=obj.message, fwd_from=obj.fwd_from, via_bot_id=obj.via_bot_id,
            reply_to=obj.reply_to, entities=obj.entities, ttl_period=obj.ttl_period,
        )
        return api.UpdateNewMessage(message=message, pts=obj.pts, pts_count=obj.pts_count)
    # updateShortChatMessage#4d6deea5 flags:# out:flags.1?true ... id:int from_id:long
    #   chat_id:long message:string pts:int pts_count:int date:int ... = Updates;
    message = api.Message(
        out=obj.out or None, id=obj.id, from_id=api.PeerUser(user_id=obj.from_id),
        peer_id=api.PeerChat(chat_id=obj.chat_id), date=obj.date, message=obj.message,
        fwd_from=obj.fwd_from, via_bot_id=obj.via_bot_id, reply_to=obj.reply_to,
        entities=obj.entities, ttl_period=obj.ttl_period,
    )
    return api.UpdateNewMessage(message=message, pts=obj.pts, pts_count=obj.pts_count)


@attrs.define
class _Counters:
    delivered: int = 0
    gaps_opened: int = 0
    gaps_filled: int = 0
    differences: int = 0
    channel_differences: int = 0
    duplicates_dropped: int = 0
    duplicate_pushes: int = 0
    already_applied: int = 0
    states_lost: int = 0
    overflow_dropped: int = 0
    retries: int = 0
    max_lag: float = 0.0
    last_lag: float = 0.0


class MessageBox:
    """See the module docstring."""

    def __init__(
        self,
        state: UpdatesState | None,
        *,
        now: float,
        access_hashes: dict[int, int] | None = None,
        gap_timeout: float = 0.5,
        idle_timeout: float = 15 * 60.0,
        channel_limit: int = 100,
        max_channel_diffs: int = 10,
        max_pending: int = 10_000,
        max_buffer: int = 1000,
        pts_total_limit: int | None = None,
        max_flood_wait: float = 300.0,
        max_backoff: float = 60.0,
        dedupe_window: int = 50_000,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.gap_timeout = gap_timeout
        self.idle_timeout = idle_timeout
        self.channel_limit = channel_limit
        self.max_channel_diffs = max_channel_diffs
        self.max_pending = max_pending
        self.max_buffer = max_buffer
        self.pts_total_limit = pts_total_limit
        self.max_flood_wait = max_flood_wait
        self.max_backoff = max_backoff
        self.dedupe_window = dedupe_window
        self._jitter = jitter
        self.access_hashes: dict[int, int] = dict(access_hashes or {})
        self._new_hashes: list[tuple[int, int]] = []
        self._entries: dict[EntryKey, _Entry] = {COMMON: _Entry(), SECONDARY: _Entry()}
        self.date = 0
        self.seq = 0
        self._known = False  # the common state is known (stored, or from getState)
        self._need_state = state is None
        self._state_in_flight = False
        self._state_retry_at = 0.0
        self._state_backoff = 0.0
        self._lost_on_state = False
        self._early: list[tuple[Any, float]] = []  # containers received before any state
        self._seq_buffer: list[tuple[int, Any, float]] = []
        self._seq_deadline: float | None = None
        self._idle_deadline: float | None = None
        self._out: deque[tuple[Update | StateLost, float]] = deque()
        # dedupe key -> it was delivered from a difference (True) or a push (False)
        self._recent: OrderedDict[str, bool] = OrderedDict()
        self._n = _Counters()
        self._snapshot: UpdatesState | None = None
        if state is not None:
            self._set_state(state.pts, state.qts, state.date, state.seq)
            for cid, pts in state.channels.items():
                self._entry(cid).pts = pts
            # On startup call only updates.getDifference (UPDATES.md §1.1).
            self._begin_diff(COMMON, now)

    # ------------------------------------------------------------------ state

    def _entry(self, key: EntryKey) -> _Entry:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        return entry

    def _set_state(self, pts: int, qts: int, date: int, seq: int) -> None:
        self._entries[COMMON].pts = pts
        self._entries[SECONDARY].pts = qts
        self.date = date
        self.seq = seq
        self._known = True
        self._snapshot = None

    def snapshot(self) -> UpdatesState:
        """The whole current state (what ``state_after`` of the next item would build on)."""
        if self._snapshot is None:
            self._snapshot = UpdatesState(
                pts=self._entries[COMMON].pts or 0,
                qts=self._entries[SECONDARY].pts or 0,
                date=self.date,
                seq=self.seq,
                channels={k: e.pts for k, e in self._entries.items() if isinstance(k, int) and e.pts},
            )
        return self._snapshot

    @property
    def known(self) -> bool:
        return self._known

    def channel_pts(self, channel_id: int) -> int | None:
        entry = self._entries.get(channel_id)
        return None if entry is None else entry.pts

    def is_diffing(self, key: EntryKey) -> bool:
        entry = self._entries.get(key)
        return bool(entry and entry.diffing)

    def track_channel(self, channel_id: int, access_hash: int | None, pts: int | None, now: float) -> None:
        """Start following a channel from ``pts`` (e.g. ``dialog.pts``); a known pts is kept."""
        if access_hash is not None:
            self._learn_hash(channel_id, access_hash)
        entry = self._entry(channel_id)
        if entry.pts is None and pts is not None:
            entry.pts = pts
            self._snapshot = None

    def take_new_access_hashes(self) -> list[tuple[int, int]]:
        out, self._new_hashes = self._new_hashes, []
        return out

    def _learn_hash(self, channel_id: int, access_hash: int) -> None:
        if self.access_hashes.get(channel_id) != access_hash:
            self.access_hashes[channel_id] = access_hash
            self._new_hashes.append((channel_id, access_hash))

    def _learn_chats(self, chats: Iterable[Any]) -> None:
        for chat in chats:
            if _qual(chat) == "channel" and not getattr(chat, "min", False) and chat.access_hash is not None:
                self._learn_hash(int(chat.id), int(chat.access_hash))

    # ------------------------------------------------------------------ output

    @property
    def pending(self) -> int:
        return len(self._out)

    def take(self, now: float) -> Update | StateLost | None:
        if not self._out:
            return None
        item, arrived = self._out.popleft()
        lag = max(0.0, now - arrived)
        self._n.last_lag = lag
        self._n.max_lag = max(self._n.max_lag, lag)
        return item

    def statistics(self) -> UpdatesStatistics:
        n = self._n
        return UpdatesStatistics(
            delivered=n.delivered,
            gaps_opened=n.gaps_opened,
            gaps_filled=n.gaps_filled,
            differences=n.differences,
            channel_differences=n.channel_differences,
            duplicates_dropped=n.duplicates_dropped,
            duplicate_pushes=n.duplicate_pushes,
            already_applied=n.already_applied,
            states_lost=n.states_lost,
            pending=len(self._out),
            max_lag=n.max_lag,
            last_lag=n.last_lag,
            overflow_dropped=n.overflow_dropped,
            retries=n.retries,
        )

    def _drop_item(self, item: _Item) -> None:
        box = None if item.key in (COMMON, SECONDARY) else int(item.key)
        pts = None if item.key == SECONDARY else item.pts
        self._dropped(box, pts, item.update, item.from_difference)

    def _drop_container(self, updates: list[Any]) -> None:
        """A pushed container whose seq is already applied: one drop, a duplicate push if one of
        its updates was delivered from a push."""
        self._n.duplicates_dropped += 1
        for update in updates:
            found = _sequence_of(update)
            box = None if found is None or found[0] in (COMMON, SECONDARY) else int(found[0])
            pts = None if found is None or found[0] == SECONDARY else found[1]
            if self._recent.get(dedupe_key(box, update, pts)) is False:
                self._n.duplicate_pushes += 1
                return
        self._n.already_applied += 1

    def _dropped(self, box: int | None, pts: int | None, update: Any, from_difference: bool) -> None:
        """Count an update dropped as already handled, by why it came twice.

        A push whose update was already delivered from a push is a *duplicate push* (the
        server or the network sent it twice).  Everything else is *already applied*: the same
        update came once in a push and once in a difference, e.g. the pushes that wait in a
        gap buffer or arrive while a difference is in flight, which the difference returns too
        (a getDifference answers everything after our pts, UPDATES.md §3.1).  That is the
        normal cost of a gap recovery, not a fault.
        """
        self._n.duplicates_dropped += 1
        if update is not None and not from_difference:
            seen = self._recent.get(dedupe_key(box, update, pts))
            if seen is False:
                self._n.duplicate_pushes += 1
                return
        self._n.already_applied += 1

    def _deliver(self, box: int | None, pts: int | None, update: Any, users: tuple, chats: tuple,
                 arrived: float, from_difference: bool = False) -> bool:
        key = dedupe_key(box, update, pts)
        seen = self._recent.get(key)
        if seen is not None:
            self._n.duplicates_dropped += 1
            if seen or from_difference:
                self._n.already_applied += 1
            else:
                self._n.duplicate_pushes += 1
            return False
        self._recent[key] = from_difference
        if len(self._recent) > self.dedupe_window:
            self._recent.popitem(last=False)
        self._snapshot = None
        item = Update(box=box, pts=pts, dedupe_key=key, update=update, users=users, chats=chats,
                      state_after=self.snapshot())
        self._out.append((item, arrived))
        self._n.delivered += 1
        return True

    def _lost(self, box: int | None, now: float) -> None:
        self._snapshot = None
        self._out.append((StateLost(box=box, state_after=self.snapshot()), now))
        self._n.states_lost += 1

    def _restamp_last(self, mark: int) -> None:
        """Give the last item delivered since ``mark`` the current state (end of a difference)."""
        if len(self._out) > mark:
            item, arrived = self._out[-1]
            self._snapshot = None
            self._out[-1] = (attrs.evolve(item, state_after=self.snapshot()), arrived)

    # ------------------------------------------------------------------ input: updates

    def receive_updates(self, obj: Any, now: float) -> None:
        """An ``Updates`` object from the home DC, or the result of an own request."""
        name = _qual(obj)
        if not self._known:
            if len(self._early) < self.max_buffer:
                self._early.append((obj, now))
            return
        if len(self._out) >= self.max_pending:
            self._overflow(obj, now)
            return
        if name == "updatesTooLong":
            # updatesTooLong#e317af7e = Updates;
            self._begin_diff(COMMON, now)
            return
        if name == "updateShortSentMessage":
            # updateShortSentMessage#9015e101 flags:# out:flags.1?true id:int pts:int pts_count:int
            #   date:int ... = Updates;
            self._apply_batch([_Item(COMMON, obj.pts, obj.pts_count, None, (), (), now)], (), now)
            return
        if name in ("updateShortMessage", "updateShortChatMessage"):
            self._container([_short_to_update(obj)], (), (), obj.date, 0, 0, now)
            return
        if name == "updateShort":
            # updateShort#78d4dec1 update:Update date:int = Updates;
            self._container([obj.update], (), (), obj.date, 0, 0, now)
            return
        if name in ("updates", "updatesCombined"):
            # updates#74ae4240 updates:Vector<Update> users:Vector<User> chats:Vector<Chat>
            #   date:int seq:int = Updates;
            # updatesCombined#725b04c3 ... date:int seq_start:int seq:int = Updates;
            seq_start = obj.seq_start if name == "updatesCombined" else obj.seq
            self._container(list(obj.updates), tuple(obj.users), tuple(obj.chats), obj.date,
                            seq_start, obj.seq, now)
            return
        # anything else is not an Updates object: ignore it (the driver logs it)

    def receive_affected(self, obj: Any, now: float, channel_id: int | None = None) -> None:
        """``messages.affectedMessages/History/FoundMessages`` of an own request (gotd#1382):
        the pts it carries is applied like an update of that box, without delivering one."""
        if not self._known:
            return
        key: EntryKey = COMMON if channel_id is None else channel_id
        if obj.pts_count == 0 and key == COMMON:
            return
        self._apply_batch([_Item(key, obj.pts, obj.pts_count, None, (), (), now)], (), now)

    def resync(self, now: float) -> None:
        """Reconnect / new_session_created / home change / lost pushes: fetch a difference."""
        if self._known:
            self._begin_diff(COMMON, now)

    def _overflow(self, obj: Any, now: float) -> None:
        """Consumer too far behind: drop the container, refetch its boxes later."""
        self._n.overflow_dropped += 1
        self._begin_diff(COMMON, now)
        for update in getattr(obj, "updates", ()):
            channel = _channel_of(update)
            if channel is not None and self.channel_pts(channel) is not None:
                self._begin_diff(channel, now)

    def _container(self, updates: list[Any], users: tuple, chats: tuple, date: int, seq_start: int,
                   seq: int, now: float) -> None:
        self._learn_chats(chats)
        if seq_start != 0:
            if self._entries[COMMON].diffing:
                self._seq_buffer.append((seq_start, (updates, users, chats, date, seq_start, seq), now))
                return
            expected = self.seq + 1
            if seq_start < expected:
                self._drop_container(updates)
                return
            if seq_start > expected:
                self._seq_buffer.append((seq_start, (updates, users, chats, date, seq_start, seq), now))
                if self._seq_deadline is None:
                    self._seq_deadline = now + self.gap_timeout
                    self._n.gaps_opened += 1
                return
        self._apply_container(updates, users, chats, date, seq, now)
        self._retry_seq(now)

    def _apply_container(self, updates: list[Any], users: tuple, chats: tuple, date: int, seq: int,
                         now: float, from_difference: bool = False) -> None:
        sequenced: list[_Item] = []
        rest: list[Any] = []
        for update in updates:
            if _qual(update) == "updateChannelTooLong":
                # updateChannelTooLong#108d941f flags:# channel_id:long pts:flags.0?int = Update;
                self._channel_too_long(int(update.channel_id), update.pts, now)
                continue
            found = _sequence_of(update)
            if found is None:
                rest.append(update)
            else:
                key, pts, count = found
                sequenced.append(_Item(key, pts, count, update, users, chats, now, from_difference))
        self._apply_batch(sequenced, rest, now, users=users, chats=chats, from_difference=from_difference)
        if seq != 0:
            self.seq = seq
            self.date = date
            self._snapshot = None

    def _apply_batch(self, items: list[_Item], rest: Iterable[Any], now: float, *, users: tuple = (),
                     chats: tuple = (), from_difference: bool = False) -> None:
        items.sort(key=lambda it: (str(it.key), it.pts - it.count))
        touched: set[EntryKey] = set()
        for item in items:
            touched.add(item.key)
            self._apply_one(item, now)
        for update in rest:
            self._deliver(None, None, update, users, chats, now, from_difference)
        for key in touched:
            self._retry_buffer(key, now)

    def _apply_one(self, item: _Item, now: float) -> None:
        entry = self._entry(item.key)
        if (entry.diffing or entry.buffer) and self._buffered_twice(entry, item):
            return
        if entry.diffing:
            # postponed until the difference is in (TDLib), then re-checked
            if len(entry.buffer) < self.max_buffer:
                entry.buffer.append(item)
            return
        unknown = entry.pts is None
        local = item.pts - item.count if entry.pts is None else entry.pts
        if local + item.count == item.pts:
            self._apply(entry, item, now)
            if unknown and item.count == 0:
                entry.pts = item.pts - 1
        elif local + item.count > item.pts:
            self._drop_item(item)
        else:
            entry.buffer.append(item)
            if entry.gap_deadline is None:
                entry.gap_deadline = now + self.gap_timeout
                self._n.gaps_opened += 1
            if len(entry.buffer) > self.max_buffer:
                self._begin_diff(item.key, now)

    def _buffered_twice(self, entry: _Entry, item: _Item) -> bool:
        """A push already waiting in the buffer came again: a duplicate push, dropped now (so
        that it is not mistaken later for one the difference covered)."""
        if item.update is None or item.from_difference:
            return False
        for waiting in entry.buffer:
            if (waiting.pts == item.pts and waiting.count == item.count and waiting.update is not None
                    and not waiting.from_difference and waiting.update == item.update):
                self._n.duplicates_dropped += 1
                self._n.duplicate_pushes += 1
                return True
        return False

    def _apply(self, entry: _Entry, item: _Item, now: float) -> None:
        entry.pts = item.pts
        self._snapshot = None
        if item.key in (COMMON, SECONDARY):
            self._idle_deadline = now + self.idle_timeout
        if item.update is None:
            return  # pts-only marker
        box = None if item.key in (COMMON, SECONDARY) else int(item.key)
        pts = None if item.key == SECONDARY else item.pts
        self._deliver(box, pts, item.update, item.users, item.chats, item.arrived, item.from_difference)

    def _retry_buffer(self, key: EntryKey, now: float) -> None:
        entry = self._entries.get(key)
        if entry is None or entry.diffing or not entry.buffer:
            if entry is not None and not entry.buffer and entry.gap_deadline is not None:
                entry.gap_deadline = None
                self._n.gaps_filled += 1
            return
        entry.buffer.sort(key=lambda it: it.pts - it.count)
        progress = True
        while progress and entry.buffer:
            progress = False
            keep: list[_Item] = []
            for item in entry.buffer:
                local = item.pts - item.count if entry.pts is None else entry.pts
                if local + item.count == item.pts:
                    self._apply(entry, item, now)
                    progress = True
                elif local + item.count > item.pts:
                    self._drop_item(item)
                    progress = True
                else:
                    keep.append(item)
            entry.buffer = keep
        if not entry.buffer:
            if entry.gap_deadline is not None:
                entry.gap_deadline = None
                self._n.gaps_filled += 1
        elif entry.gap_deadline is None:
            entry.gap_deadline = now + self.gap_timeout
            self._n.gaps_opened += 1

    def _retry_seq(self, now: float) -> None:
        if not self._seq_buffer or self._entries[COMMON].diffing:
            return
        self._seq_buffer.sort(key=lambda x: x[0])
        progress = True
        while progress and self._seq_buffer:
            progress = False
            keep = []
            for seq_start, args, arrived in self._seq_buffer:
                if seq_start < self.seq + 1:
                    self._drop_container(args[0])
                    progress = True
                elif seq_start == self.seq + 1:
                    updates, users, chats, date, _, seq = args
                    self._apply_container(updates, users, chats, date, seq, arrived)
                    progress = True
                else:
                    keep.append((seq_start, args, arrived))
            self._seq_buffer = keep
        if not self._seq_buffer and self._seq_deadline is not None:
            self._seq_deadline = None
            self._n.gaps_filled += 1
        elif self._seq_buffer and self._seq_deadline is None:
            self._seq_deadline = now + self.gap_timeout
            self._n.gaps_opened += 1

    def _channel_too_long(self, channel_id: int, pts: int | None, now: float) -> None:
        entry = self._entry(channel_id)
        if entry.pts is None:
            if pts is None:
                return  # nothing to start from: the channel is followed from its next update
            entry.pts = pts  # first sight: follow it from here (history before it is not ours)
            self._snapshot = None
            return
        self._begin_diff(channel_id, now)

    # ------------------------------------------------------------------ time

    def _begin_diff(self, key: EntryKey, now: float) -> None:
        if key == SECONDARY:
            key = COMMON
        entry = self._entry(key)
        entry.diffing = True
        entry.gap_deadline = None
        if key == COMMON:
            self._entries[SECONDARY].diffing = True
            self._entries[SECONDARY].gap_deadline = None
            self._seq_deadline = None

    def next_deadline(self) -> float | None:
        times: list[float] = []
        for entry in self._entries.values():
            if entry.gap_deadline is not None:
                times.append(entry.gap_deadline)
            if entry.diffing and not entry.in_flight and entry.retry_at:
                times.append(entry.retry_at)
        if self._seq_deadline is not None:
            times.append(self._seq_deadline)
        if self._known and self._idle_deadline is not None and not self._entries[COMMON].diffing:
            times.append(self._idle_deadline)
        if self._need_state and not self._state_in_flight and self._state_retry_at:
            times.append(self._state_retry_at)
        return min(times) if times else None

    def check_deadlines(self, now: float) -> None:
        for key, entry in list(self._entries.items()):
            if entry.gap_deadline is not None and entry.gap_deadline <= now:
                self._begin_diff(key, now)
        if self._seq_deadline is not None and self._seq_deadline <= now:
            self._begin_diff(COMMON, now)
        if self._known and self._idle_deadline is None:
            self._idle_deadline = now + self.idle_timeout
        if self._known and self._idle_deadline is not None and self._idle_deadline <= now:
            self._begin_diff(COMMON, now)
            self._idle_deadline = now + self.idle_timeout

    # ------------------------------------------------------------------ requests

    def next_requests(self, now: float) -> list[Request]:
        """The requests to start now (each is answered by exactly one ``*_result`` or
        ``request_failed`` call)."""
        if len(self._out) >= self.max_pending:
            return []  # the consumer catches up first; the differences wait for room
        out: list[Request] = []
        if self._need_state:
            if not self._state_in_flight and self._state_retry_at <= now:
                self._state_in_flight = True
                out.append(GetState())
            return out
        common = self._entries[COMMON]
        if common.diffing and not common.in_flight and common.retry_at <= now:
            common.in_flight = True
            out.append(GetDifference(
                pts=common.pts or 1, date=self.date, qts=self._entries[SECONDARY].pts or 0,
                pts_total_limit=self.pts_total_limit,
            ))
        running = sum(1 for k, e in self._entries.items() if isinstance(k, int) and e.in_flight)
        for key, entry in list(self._entries.items()):
            if running >= self.max_channel_diffs:
                break
            if not isinstance(key, int) or not entry.diffing or entry.in_flight or entry.retry_at > now:
                continue
            access_hash = self.access_hashes.get(key)
            if access_hash is None or entry.pts is None:
                # cannot ask for it: follow the channel from its next update instead
                entry.diffing = False
                self._retry_buffer(key, now)
                continue
            entry.in_flight = True
            running += 1
            out.append(GetChannelDifference(key, access_hash, entry.pts, self.channel_limit))
        return out

    def state_result(self, state: Any, now: float) -> None:
        # updates.state#a56c2a3e pts:int qts:int date:int seq:int unread_count:int = updates.State;
        self._state_in_flight = False
        self._need_state = False
        self._state_backoff = 0.0
        for entry in self._entries.values():
            entry.diffing = entry.in_flight = False
            entry.buffer.clear()
            entry.gap_deadline = None
        self._set_state(state.pts, state.qts, state.date, state.seq)
        self._idle_deadline = now + self.idle_timeout
        if self._lost_on_state:
            self._lost_on_state = False
            self._lost(None, now)
        early, self._early = self._early, []
        for obj, arrived in early:
            self.receive_updates(obj, arrived)

    def difference_result(self, diff: Any, now: float) -> None:
        common = self._entries[COMMON]
        common.in_flight = False
        common.backoff = 0.0
        self._n.differences += 1
        name = _qual(diff)
        if name == "updates.differenceEmpty":
            # updates.differenceEmpty#5d75a138 date:int seq:int = updates.Difference;
            self.date, self.seq = diff.date, diff.seq
            self._snapshot = None
            self._end_common_diff(now)
            return
        if name == "updates.differenceTooLong":
            # updates.differenceTooLong#4afe8f6d pts:int = updates.Difference;
            common.pts = diff.pts
            self._lost(None, now)
            return  # still diffing: the next getDifference starts from the new pts
        # updates.difference#f49ca0 new_messages:Vector<Message> new_encrypted_messages:Vector<...>
        #   other_updates:Vector<Update> chats:Vector<Chat> users:Vector<User>
        #   state:updates.State = updates.Difference;
        # updates.differenceSlice#a8fb1981 ... intermediate_state:updates.State = updates.Difference;
        final = name == "updates.difference"
        state = diff.state if final else diff.intermediate_state
        users, chats = tuple(diff.users), tuple(diff.chats)
        self._learn_chats(chats)
        mark = len(self._out)
        old_pts, old_qts = common.pts or 0, self._entries[SECONDARY].pts or 0
        for message in diff.new_messages:
            self._deliver(None, None, api.UpdateNewMessage(message=message, pts=0, pts_count=0),
                          users, chats, now, from_difference=True)
        for message in diff.new_encrypted_messages:
            self._deliver(None, None, api.UpdateNewEncryptedMessage(message=message, qts=0),
                          users, chats, now, from_difference=True)
        others: list[tuple[int, Any]] = []
        channel_items: list[Any] = []
        for update in diff.other_updates:
            if _qual(update) == "updateChannelTooLong" or _channel_of(update) is not None:
                channel_items.append(update)
                continue
            found = _sequence_of(update)
            if found is None:
                self._deliver(None, None, update, users, chats, now, from_difference=True)
            elif found[0] == SECONDARY:
                if found[1] > old_qts:
                    self._deliver(None, None, update, users, chats, now, from_difference=True)
                else:
                    self._dropped(None, None, update, True)
            elif found[1] > old_pts:
                others.append((found[1], update))
            else:
                self._dropped(None, found[1], update, True)
        for pts, update in sorted(others, key=lambda x: x[0]):
            self._deliver(None, pts, update, users, chats, now, from_difference=True)
        self._set_state(state.pts, state.qts, state.date, state.seq)
        self._restamp_last(mark)
        if channel_items:
            # channel updates go through their own boxes (they may start channel differences)
            self._apply_container(channel_items, users, chats, 0, 0, now, from_difference=True)
        if final:
            self._end_common_diff(now)

    def _end_common_diff(self, now: float) -> None:
        for key in (COMMON, SECONDARY):
            entry = self._entries[key]
            entry.diffing = entry.in_flight = False
            entry.retry_at = 0.0
            entry.backoff = 0.0
        self._idle_deadline = now + self.idle_timeout
        self._retry_buffer(COMMON, now)
        self._retry_buffer(SECONDARY, now)
        self._retry_seq(now)

    def channel_difference_result(self, request: GetChannelDifference, diff: Any, now: float) -> None:
        key = request.channel_id
        entry = self._entry(key)
        entry.in_flight = False
        entry.backoff = 0.0
        self._n.channel_differences += 1
        name = _qual(diff)
        if name == "updates.channelDifferenceEmpty":
            # updates.channelDifferenceEmpty#3e11affb flags:# final:flags.0?true pts:int
            #   timeout:flags.1?int = updates.ChannelDifference;
            entry.pts = diff.pts
            self._snapshot = None
            self._end_channel_diff(key, now)
            return
        users, chats = tuple(diff.users), tuple(diff.chats)
        self._learn_chats(chats)
        if name == "updates.channelDifferenceTooLong":
            # updates.channelDifferenceTooLong#a4bcc6fe flags:# final:flags.0?true
            #   timeout:flags.1?int dialog:Dialog messages:Vector<Message> chats:Vector<Chat>
            #   users:Vector<User> = updates.ChannelDifference;
            if diff.dialog.pts:
                entry.pts = diff.dialog.pts
            self._lost(key, now)
            for message in sorted(diff.messages, key=lambda m: m.id):
                self._deliver(key, None, api.UpdateNewChannelMessage(message=message, pts=0, pts_count=0),
                              users, chats, now, from_difference=True)
            self._end_channel_diff(key, now)
            return
        # updates.channelDifference#2064674e flags:# final:flags.0?true pts:int timeout:flags.1?int
        #   new_messages:Vector<Message> other_updates:Vector<Update> chats:Vector<Chat>
        #   users:Vector<User> = updates.ChannelDifference;
        mark = len(self._out)
        old = entry.pts or 0
        for message in diff.new_messages:
            self._deliver(key, None, api.UpdateNewChannelMessage(message=message, pts=0, pts_count=0),
                          users, chats, now, from_difference=True)
        others = []
        for update in diff.other_updates:
            found = _sequence_of(update)
            if found is not None and found[0] == key:
                if found[1] > old:
                    others.append((found[1], update))
                else:
                    self._dropped(key, found[1], update, True)
            elif _qual(update) != "updateChannelTooLong":
                self._deliver(key, None, update, users, chats, now, from_difference=True)
        for pts, update in sorted(others, key=lambda x: x[0]):
            self._deliver(key, pts, update, users, chats, now, from_difference=True)
        entry.pts = diff.pts
        self._snapshot = None
        self._restamp_last(mark)
        if diff.final:
            self._end_channel_diff(key, now)
        # not final: still diffing, asked again at once

    def _end_channel_diff(self, key: int, now: float) -> None:
        entry = self._entry(key)
        entry.diffing = entry.in_flight = False
        entry.retry_at = 0.0
        self._retry_buffer(key, now)

    def _retry_later(self, entry: _Entry, failure: Failure, now: float, wait: float | None) -> bool:
        """Schedule the next attempt for a retryable failure; False if it is not one."""
        if failure is Failure.RETRY_AFTER:
            entry.retry_at = now + min(self.max_flood_wait, max(1.0, wait or 1.0))
        elif failure is Failure.BACKOFF:
            # 1, 2, 4 ... max_backoff seconds, plus up to 25 % jitter (TDLib)
            entry.backoff = min(self.max_backoff, max(1.0, entry.backoff * 2))
            entry.retry_at = now + entry.backoff * (1.0 + 0.25 * self._jitter())
        else:
            return False
        return True

    def _common_failed(self, failure: Failure, now: float, wait: float | None) -> None:
        entry = self._entries[COMMON]
        entry.in_flight = False
        if not self._retry_later(entry, failure, now, wait):
            # the server refuses our position: start again from getState, and say so
            self._need_state = True
            self._known = False
            self._lost_on_state = True

    def request_failed(self, request: Request, failure: Failure, now: float,
                       wait: float | None = None) -> None:
        self._n.retries += 1
        if isinstance(request, GetState):
            self._state_in_flight = False
            self._state_backoff = min(self.max_backoff, max(1.0, self._state_backoff * 2))
            self._state_retry_at = now + (wait if wait is not None else self._state_backoff)
            return
        if isinstance(request, GetDifference):
            self._common_failed(failure, now, wait)
            return
        key = request.channel_id
        entry = self._entry(key)
        entry.in_flight = False
        if not self._retry_later(entry, failure, now, wait):
            # CHANNEL_PRIVATE / CHANNEL_INVALID (FORGET), or a refused channel pts (RESET)
            del self._entries[key]
            if failure is Failure.FORGET:
                self.access_hashes.pop(key, None)
            self._snapshot = None
            self._lost(key, now)
