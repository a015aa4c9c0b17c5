"""UPDATES.md §3 test matrix: the manager (open_updates) against the emulator's real update
history and difference answers, on trio's fake clock.  The pool is a socket-less stand-in
(``_world_pool.WorldPool``) exposing the pool's public updates API; the same flows over real
sockets are in test_updates_e2e.py."""

from __future__ import annotations

import pytest
import trio

from dcpool import tl
from dcpool.testing import messaging as M
from dcpool.updates import MemoryUpdatesStore, StateLost, Update, open_updates

from ._world_pool import WorldPool, settle, two_users

api = tl.api
GD = "updates.getDifference"
GCD = "updates.getChannelDifference"


def text_of(item) -> str | None:
    if isinstance(item, Update) and hasattr(item.update, "message") and hasattr(item.update.message, "message"):
        return item.update.message.message
    return None


async def take(stream, n: int) -> list:
    items = []
    if n == 0:
        return items
    async for item in stream:
        items.append(item)
        await stream.ack(item)
        if len(items) == n:
            break
    return items


async def test_in_order_apply(clock):
    world, a, b = two_users()
    pool = WorldPool(world, b.id)
    with trio.fail_after(60):
        async with open_updates(pool) as stream:
            await settle()
            for i in range(5):
                M.send_message(world, a.id, b.id, f"m{i}")
            items = await take(stream, 5)
    assert [text_of(i) for i in items] == [f"m{i}" for i in range(5)]
    assert [i.pts for i in items] == [2, 3, 4, 5, 6]
    assert all(i.box is None for i in items)
    assert pool.calls["updates.getState"] == 1 and pool.calls[GD] == 0
    assert stream.statistics().gaps_opened == 0


async def test_duplicate_push_is_ignored(clock):
    world, a, b = two_users()
    pool = WorldPool(world, b.id)
    with trio.fail_after(60):
        async with open_updates(pool) as stream:
            await settle()
            M.messaging(world).faults.duplicate_next = 1
            M.send_message(world, a.id, b.id, "once")
            M.send_message(world, a.id, b.id, "next")
            items = await take(stream, 2)
            await settle(2)
            assert stream.statistics().pending == 0
    assert [text_of(i) for i in items] == ["once", "next"]
    assert stream.statistics().duplicates_dropped == 1
    assert pool.calls[GD] == 0


async def test_out_of_order_within_the_wait_needs_no_rpc(clock):
    world, a, b = two_users()
    pool = WorldPool(world, b.id)
    with trio.fail_after(60):
        async with open_updates(pool) as stream:
            await settle()
            M.messaging(world).faults.reorder_next = 1
            M.send_message(world, a.id, b.id, "first")
            await trio.sleep(0.3)  # the second push comes 0.3 s later, within the 0.5 s wait
            M.send_message(world, a.id, b.id, "second")
            items = await take(stream, 2)
    assert [text_of(i) for i in items] == ["first", "second"]
    s = stream.statistics()
    assert s.gaps_opened == 1 and s.gaps_filled == 1
    assert pool.calls[GD] == 0


async def test_unfilled_gap_gives_one_difference_after_half_a_second(clock):
    world, a, b = two_users()
    pool = WorldPool(world, b.id)
    with trio.fail_after(60):
        async with open_updates(pool) as stream:
            await settle()
            M.messaging(world).faults.drop_next = 1
            M.send_message(world, a.id, b.id, "lost")
            M.send_message(world, a.id, b.id, "after")
            t0 = trio.current_time()
            items = await take(stream, 2)
            await settle(2)
    assert [text_of(i) for i in items] == ["lost", "after"]
    assert pool.calls[GD] == 1
    assert pool.times[GD][0] - t0 == pytest.approx(0.5, abs=0.02)


def _channel_box_items(box, channel_id, pts_x):
    return [
        api.UpdateShort(update=api.UpdateReadChannelInbox(channel_id=channel_id, max_id=5, still_unread_count=0,
                                                          pts=pts_x), date=1),
        api.Updates(updates=[api.UpdateNewChannelMessage(
            message=api.Message(id=5, peer_id=api.PeerChannel(channel_id=channel_id), date=1, message="x"),
            pts=pts_x, pts_count=1)], users=[], chats=[], date=1, seq=0),
    ]


@pytest.mark.parametrize("order", ["read_first", "message_first"])
def test_read_channel_inbox_with_zero_count_and_new_message_in_either_order(order):
    from dcpool.updates import MessageBox, UpdatesState

    box = MessageBox(UpdatesState(pts=1, qts=0, date=0, seq=0, channels={77: 9}), now=0.0)
    box.difference_result(api.updates.DifferenceEmpty(date=0, seq=0), 0.0)
    read, new = _channel_box_items(box, 77, 10)
    pushes = [read, new] if order == "read_first" else [new, read]
    for obj in pushes:
        box.receive_updates(obj, 0.1)
    got = [box.take(0.2) for _ in range(2)]
    assert [type(i.update).QUALNAME for i in got] == ["updateNewChannelMessage", "updateReadChannelInbox"]
    assert box.next_requests(5.0) == []  # no gap was left open
    assert box.channel_pts(77) == 10


def test_seq_duplicate_and_seq_gap():
    from dcpool.updates import GetDifference, MessageBox, UpdatesState

    box = MessageBox(UpdatesState(pts=1, qts=0, date=0, seq=4, channels={}), now=0.0)
    box.next_requests(0.0)
    box.difference_result(api.updates.DifferenceEmpty(date=0, seq=4), 0.0)

    def container(seq, pts):
        upd = api.UpdateDeleteMessages(messages=[pts], pts=pts, pts_count=1)
        return api.Updates(updates=[upd], users=[], chats=[], date=10, seq=seq)

    box.receive_updates(container(5, 2), 1.0)
    box.receive_updates(container(5, 2), 1.0)  # seq duplicate: the whole container is dropped
    assert box.statistics().duplicates_dropped == 1
    box.receive_updates(container(7, 4), 1.0)  # seq 6 is missing
    assert box.next_requests(1.4) == []
    box.check_deadlines(1.5)
    requests = box.next_requests(1.5)
    assert requests == [GetDifference(pts=2, date=10, qts=0)]
    assert box.seq == 5


async def test_difference_slices_are_followed(clock):
    world, a, b = two_users()
    m = M.messaging(world)
    m.difference_limit = 10
    pool = WorldPool(world, b.id)
    with trio.fail_after(60):
        async with open_updates(pool) as stream:
            await settle()
            m.faults.drop_next = 35
            for i in range(36):
                M.send_message(world, a.id, b.id, f"m{i}")
            items = await take(stream, 36)
    assert [text_of(i) for i in items] == [f"m{i}" for i in range(36)]
    assert pool.calls[GD] == 4  # slices of 10, 10, 10, then the final difference


async def test_difference_too_long_marks_the_state_lost(clock):
    world, a, b = two_users()
    m = M.messaging(world)
    pool = WorldPool(world, b.id)
    with trio.fail_after(60):
        async with open_updates(pool, pts_total_limit=20) as stream:
            await settle()
            m.faults.drop_next = 30
            for i in range(31):
                M.send_message(world, a.id, b.id, f"m{i}")
            items = await take(stream, 1)
            await settle(2)
            assert stream.statistics().pending == 0  # everything up to the new pts is skipped
    assert isinstance(items[0], StateLost) and items[0].box is None
    assert items[0].state_after.pts == b.pts
    assert stream.statistics().states_lost == 1
    assert pool.calls[GD] == 2  # differenceTooLong, then an empty one from the new pts


async def test_updates_too_long_fetches_a_difference(clock):
    world, a, b = two_users()
    m = M.messaging(world)
    pool = WorldPool(world, b.id)
    with trio.fail_after(60):
        async with open_updates(pool) as stream:
            await settle()
            m.faults.drop_next = 3
            for i in range(3):
                M.send_message(world, a.id, b.id, f"m{i}")
            M.push_too_long(world, b.id)
            items = await take(stream, 3)
    assert [text_of(i) for i in items] == ["m0", "m1", "m2"]
    assert pool.calls[GD] == 1


async def _channel_setup(world, a, b, stream, n_channels=1):
    channels = []
    for i in range(n_channels):
        ch = M.create_channel(world, a.id, f"c{i}", members=[b.id])
        stream.track_channel(ch.id, ch.access_hash, ch.pts)
        channels.append(ch)
    return channels


async def test_channel_gap_fetches_channel_difference_in_non_final_slices(clock):
    world, a, b = two_users()
    m = M.messaging(world)
    pool = WorldPool(world, b.id)
    with trio.fail_after(60):
        async with open_updates(pool, channel_limit=10) as stream:
            await settle()
            (ch,) = await _channel_setup(world, a, b, stream)
            m.faults.drop_next = 25
            for i in range(26):
                M.post(world, ch.id, f"p{i}")
            items = await take(stream, 26)
    assert [text_of(i) for i in items] == [f"p{i}" for i in range(26)]
    assert all(i.box == ch.id for i in items)
    assert pool.calls[GCD] == 3  # 10 (not final), 10 (not final), 5 (final)
    assert pool.calls[GD] == 0
    assert stream.state.channels[ch.id] == ch.pts


async def test_channel_difference_default_limit_is_100(clock):
    world, a, b = two_users()
    m = M.messaging(world)
    pool = WorldPool(world, b.id)
    seen = []
    orig = pool.invoke

    async def spy(request):
        if type(request).QUALNAME == GCD:
            seen.append(request.limit)
        return await orig(request)

    pool.invoke = spy
    with trio.fail_after(60):
        async with open_updates(pool) as stream:
            await settle()
            (ch,) = await _channel_setup(world, a, b, stream)
            m.faults.drop_next = 1
            M.post(world, ch.id, "lost")
            M.post(world, ch.id, "after")
            await take(stream, 2)
    assert seen == [100]


async def test_channel_difference_too_long(clock):
    world, a, b = two_users()
    m = M.messaging(world)
    m.channel_too_long = 20
    pool = WorldPool(world, b.id)
    with trio.fail_after(60):
        async with open_updates(pool) as stream:
            await settle()
            (ch,) = await _channel_setup(world, a, b, stream)
            m.faults.drop_next = 30
            for i in range(31):
                M.post(world, ch.id, f"p{i}")
            items = await take(stream, 2)
    assert isinstance(items[0], StateLost) and items[0].box == ch.id
    assert items[0].state_after.channels[ch.id] == ch.pts
    assert text_of(items[1]) is not None  # the latest messages follow the marker


async def test_idle_for_15_minutes_fetches_a_difference(clock):
    world, a, b = two_users()
    pool = WorldPool(world, b.id)
    with trio.fail_after(3600):
        async with open_updates(pool) as stream:
            await settle()
            M.messaging(world).faults.drop_next = 1
            M.send_message(world, a.id, b.id, "lost, and nothing follows")
            await trio.sleep(14 * 60)
            assert pool.calls[GD] == 0
            items = await take(stream, 1)
    assert text_of(items[0]) == "lost, and nothing follows"
    assert pool.calls[GD] == 1
    assert 15 * 60 - 1 <= pool.times[GD][0] <= 15 * 60 + 1


@pytest.mark.parametrize("kind", ["connected", "new_session_created", "home_changed"])
async def test_home_reconnect_fetches_a_difference(clock, kind):
    world, a, b = two_users()
    pool = WorldPool(world, b.id)
    with trio.fail_after(60):
        async with open_updates(pool) as stream:
            await settle()
            M.messaging(world).faults.drop_next = 1
            M.send_message(world, a.id, b.id, "sent while reconnecting")
            pool.emit(kind, lane="main")
            items = await take(stream, 1)
            # a reconnect of another DC's connection means nothing for updates
            pool.emit("connected", dc_id=pool.home_dc + 1, lane="main")
            await settle(1)
    assert text_of(items[0]) == "sent while reconnecting"
    assert pool.calls[GD] == 1


async def test_affected_messages_pts_is_applied(clock):
    world, a, b = two_users()
    pool = WorldPool(world, b.id)
    with trio.fail_after(60):
        async with open_updates(pool) as stream:
            await settle()
            M.send_message(world, a.id, b.id, "hello")
            (first,) = await take(stream, 1)
            peer = api.InputPeerUser(user_id=a.id, access_hash=a.access_hash)
            affected = await stream.invoke(api.messages.ReadHistory(peer=peer, max_id=first.update.message.id))
            assert affected.pts_count == 1
            sent = await stream.invoke(api.messages.SendMessage(peer=peer, message="reply", random_id=1))
            assert type(sent).QUALNAME == "updateShortSentMessage"
            M.send_message(world, a.id, b.id, "next")
            (nxt,) = await take(stream, 1)
            await settle(2)
    assert text_of(nxt) == "next"
    assert pool.calls[GD] == 0  # neither own result looked like a gap (gotd#1382)
    assert stream.statistics().gaps_opened == 0
    assert stream.state.pts == b.pts


@pytest.mark.parametrize("error", ["flood", "outdated"])
async def test_channel_difference_errors_retry_once_after_the_wait(clock, error):
    world, a, b = two_users()
    m = M.messaging(world)
    pool = WorldPool(world, b.id)
    faults = world.faults(b.home_dc)
    if error == "flood":
        faults.flood_wait(GCD, 3, count=1)
    else:
        faults.fail(GCD, 500, "PERSISTENT_TIMESTAMP_OUTDATED", count=1)
    with trio.fail_after(60):
        async with open_updates(pool) as stream:
            await settle()
            (ch,) = await _channel_setup(world, a, b, stream)
            m.faults.drop_next = 1
            M.post(world, ch.id, "lost")
            M.post(world, ch.id, "after")
            items = await take(stream, 2)
    assert [text_of(i) for i in items] == ["lost", "after"]
    assert pool.calls[GCD] == 2
    waited = pool.times[GCD][1] - pool.times[GCD][0]
    if error == "flood":
        assert 3.0 <= waited <= 3.1
    else:
        assert 1.0 <= waited <= 1.3  # first backoff step (1 s plus up to 25 % jitter)


async def test_channel_private_drops_the_entry(clock):
    world, a, b = two_users()
    m = M.messaging(world)
    pool = WorldPool(world, b.id)
    with trio.fail_after(60):
        async with open_updates(pool) as stream:
            await settle()
            (ch,) = await _channel_setup(world, a, b, stream)
            M.post(world, ch.id, "seen")
            await take(stream, 1)
            m.faults.drop_next = 1
            M.post(world, ch.id, "lost")
            m.faults.delaying = True
            M.post(world, ch.id, "held")  # held back while we are kicked out
            ch.members.discard(b.id)
            m.release()
            items = await take(stream, 1)
            await settle(2)
    assert isinstance(items[0], StateLost) and items[0].box == ch.id
    assert ch.id not in stream.state.channels
    assert pool.calls[GCD] == 1


async def test_200_gapped_channels_get_at_most_10_concurrent_differences(clock):
    world, a, b = two_users()
    m = M.messaging(world)
    pool = WorldPool(world, b.id, rtt=0.2)
    with trio.fail_after(600):
        async with open_updates(pool) as stream:
            await settle()
            channels = await _channel_setup(world, a, b, stream, n_channels=200)
            for ch in channels:
                m.faults.drop_next = 1
                M.post(world, ch.id, f"{ch.id}:lost")
                M.post(world, ch.id, f"{ch.id}:after")
            items = await take(stream, 400)
    assert pool.calls[GCD] == 200
    assert pool.max_running[GCD] == 10
    by_channel: dict[int, list[str]] = {}
    for item in items:
        by_channel.setdefault(item.box, []).append(text_of(item))
    assert all(texts == [f"{cid}:lost", f"{cid}:after"] for cid, texts in by_channel.items())
    assert len(by_channel) == 200


async def test_crash_after_apply_before_persist_loses_nothing(clock):
    world, a, b = two_users()
    pool = WorldPool(world, b.id)
    store = MemoryUpdatesStore()
    delivered: list[str] = []
    keys: set[str] = set()
    duplicates = 0
    with trio.fail_after(60):
        async with open_updates(pool, store=store) as stream:
            await settle()
            for i in range(5):
                M.send_message(world, a.id, b.id, f"m{i}")
            n = 0
            async for item in stream:
                keys.add(item.dedupe_key)
                delivered.append(text_of(item))
                n += 1
                if n <= 3:
                    await stream.ack(item)
                if n == 5:
                    break  # "crash": items 4 and 5 were handled but never acknowledged
        assert store.state is not None and store.state.pts == 4  # 1 + three acknowledged
        for i in range(5, 7):
            M.send_message(world, a.id, b.id, f"m{i}")  # sent while the client is down
        pool2 = WorldPool(world, b.id, key_id=0x6262)
        async with open_updates(pool2, store=store) as stream:
            async for item in stream:
                if item.dedupe_key in keys:
                    duplicates += 1
                else:
                    keys.add(item.dedupe_key)
                    delivered.append(text_of(item))
                await stream.ack(item)
                if len(delivered) == 7:
                    break
    assert delivered == [f"m{i}" for i in range(7)]
    assert duplicates == 2
    assert pool2.calls[GD] == 1 and pool2.calls["updates.getState"] == 0


async def test_pushes_from_a_non_home_dc_are_ignored(clock):
    world, a, b = two_users()
    pool = WorldPool(world, b.id)
    with trio.fail_after(60):
        async with open_updates(pool) as stream:
            await settle()
            foreign = api.UpdateShort(update=api.UpdateLoginToken(), date=1)
            pool.inject(foreign.to_bytes(), dc_id=pool.home_dc + 1)
            M.send_message(world, a.id, b.id, "from home")
            items = await take(stream, 1)
            await settle(1)
    assert text_of(items[0]) == "from home"
    assert stream.ignored_foreign == 1
    assert stream.statistics().delivered == 1


async def test_memory_stays_bounded_when_the_consumer_lags(clock):
    world, a, b = two_users()
    m = M.messaging(world)
    m.difference_limit = 100
    pool = WorldPool(world, b.id)
    with trio.fail_after(600):
        async with open_updates(pool, max_pending=50) as stream:
            await settle()
            for i in range(500):
                M.send_message(world, a.id, b.id, f"m{i}")
                if i % 50 == 0:
                    await settle()
            await settle(5)
            assert stream.statistics().pending <= 50
            assert stream.statistics().overflow_dropped > 0
            items = await take(stream, 500)
    assert [text_of(i) for i in items] == [f"m{i}" for i in range(500)]
    assert pool.calls[GD] >= 1


async def test_pool_gap_marker_fetches_a_difference(clock):
    world, a, b = two_users()
    pool = WorldPool(world, b.id)
    with trio.fail_after(60):
        async with open_updates(pool) as stream:
            await settle()
            M.messaging(world).faults.drop_next = 1
            M.send_message(world, a.id, b.id, "dropped by the pool")
            pool.inject_gap(1)
            items = await take(stream, 1)
    assert text_of(items[0]) == "dropped by the pool"
    assert pool.calls[GD] == 1


async def test_qts_box_and_seq_containers(clock):
    world, a, b = two_users()
    m = M.messaging(world)
    pool = WorldPool(world, b.id)
    with trio.fail_after(60):
        async with open_updates(pool) as stream:
            await settle()
            M.bot_stopped(world, b.id, a.id)  # qts 1
            m.faults.drop_next = 1
            M.bot_stopped(world, b.id, a.id, stopped=False)  # qts 2, lost: a qts gap
            M.bot_stopped(world, b.id, a.id)  # qts 3
            M.send_message(world, a.id, b.id, "hi")
            M.edit(world, a.id, b.id, 1, "edited")  # pushed in an `updates` container with seq
            items = await take(stream, 5)
            await settle(2)
    kinds = [type(i.update).QUALNAME for i in items]
    assert [i.update.qts for i in items if type(i.update).QUALNAME == "updateBotStopped"] == [1, 2, 3]
    assert kinds.count("updateEditMessage") == 1 and kinds.count("updateNewMessage") == 1
    assert pool.calls[GD] == 1
    assert b.seq == 1 and stream.state.seq == 1 and stream.state.qts == 3


# --------------------------------------------------------------------------- UPDATES.md §4


async def test_channel_timeout_is_not_a_cooldown_for_gaps(clock):
    """gotd#1852: a final channel difference's ``timeout`` must not delay the next gap."""
    world, a, b = two_users()
    m = M.messaging(world)
    pool = WorldPool(world, b.id)
    with trio.fail_after(60):
        async with open_updates(pool) as stream:
            await settle()
            (ch,) = await _channel_setup(world, a, b, stream)
            ch.timeout = 300
            for round_ in range(2):
                m.faults.drop_next = 1
                M.post(world, ch.id, f"lost{round_}")
                M.post(world, ch.id, f"after{round_}")
                t0 = trio.current_time()
                await take(stream, 2)
                assert trio.current_time() - t0 < 1.0
    assert pool.calls[GCD] == 2


async def test_idle_channels_are_not_polled(clock):
    """gotd#1800: no idle getChannelDifference per channel; one getDifference per 15 min."""
    world, a, b = two_users()
    pool = WorldPool(world, b.id)
    with trio.fail_after(7200):
        async with open_updates(pool) as stream:
            await settle()
            await _channel_setup(world, a, b, stream, n_channels=50)
            await trio.sleep(31 * 60)
    assert pool.calls[GCD] == 0
    assert pool.calls[GD] == 2


async def test_push_overlapping_a_channel_difference_is_delivered_once(clock):
    """grammers#46 / Telethon#4462: a post pushed while its difference is in flight, and
    returned by that difference too, reaches the consumer once."""
    world, a, b = two_users()
    m = M.messaging(world)
    pool = WorldPool(world, b.id, rtt=0.2)
    with trio.fail_after(60):
        async with open_updates(pool) as stream:
            await settle()
            (ch,) = await _channel_setup(world, a, b, stream)
            m.faults.drop_next = 1
            M.post(world, ch.id, "lost")
            M.post(world, ch.id, "gap")
            await trio.sleep(0.55)  # the difference is on its way (it is answered at 0.7 s)
            assert pool.running[GCD] == 1
            M.post(world, ch.id, "during")
            items = await take(stream, 3)
            await settle(2)
            assert stream.statistics().pending == 0
    assert [text_of(i) for i in items] == ["lost", "gap", "during"]
    assert stream.statistics().duplicates_dropped >= 1


async def test_refused_common_position_restarts_from_get_state(clock):
    world, a, b = two_users()
    pool = WorldPool(world, b.id)
    store = MemoryUpdatesStore()
    from dcpool.updates import UpdatesState

    store.state = UpdatesState(pts=500, qts=0, date=0, seq=0)  # ahead of the server
    with trio.fail_after(60):
        async with open_updates(pool, store=store) as stream:
            (item,) = await take(stream, 1)
            M.send_message(world, a.id, b.id, "after the reset")
            (nxt,) = await take(stream, 1)
    assert isinstance(item, StateLost) and item.box is None and item.state_after.pts == 1
    assert text_of(nxt) == "after the reset"
    assert pool.calls["updates.getState"] == 1


async def test_update_channel_too_long_push_fetches_the_channel_difference(clock):
    world, a, b = two_users()
    m = M.messaging(world)
    pool = WorldPool(world, b.id)
    with trio.fail_after(60):
        async with open_updates(pool) as stream:
            await settle()
            (ch,) = await _channel_setup(world, a, b, stream)
            m.faults.drop_next = 2
            M.post(world, ch.id, "p0")
            M.post(world, ch.id, "p1")
            M.push_channel_too_long(world, b.id, ch.id)
            items = await take(stream, 2)
    assert [text_of(i) for i in items] == ["p0", "p1"]
    assert pool.calls[GCD] == 1 and pool.calls[GD] == 0


def test_gap_buffer_is_bounded_and_falls_back_to_a_difference():
    from dcpool.updates import GetDifference, MessageBox, UpdatesState

    box = MessageBox(UpdatesState(pts=1, qts=0, date=0, seq=0), now=0.0, max_buffer=100)
    box.next_requests(0.0)
    box.difference_result(api.updates.DifferenceEmpty(date=0, seq=0), 0.0)
    for pts in range(3, 5003):  # pts 2 never comes
        upd = api.UpdateDeleteMessages(messages=[pts], pts=pts, pts_count=1)
        box.receive_updates(api.UpdateShort(update=upd, date=1), 0.1)
    assert box.pending == 0
    assert box.is_diffing("common")  # the buffer overflowed: no 0.5 s wait
    assert box.next_requests(0.1) == [GetDifference(pts=1, date=0, qts=0)]


def test_updates_combined_seq_range():
    from dcpool.updates import MessageBox, UpdatesState

    box = MessageBox(UpdatesState(pts=1, qts=0, date=0, seq=3), now=0.0)
    box.next_requests(0.0)
    box.difference_result(api.updates.DifferenceEmpty(date=0, seq=3), 0.0)
    ups = [api.UpdateDeleteMessages(messages=[i], pts=i, pts_count=1) for i in (2, 3)]
    box.receive_updates(api.UpdatesCombined(updates=ups, users=[], chats=[], date=5, seq_start=4, seq=6), 0.1)
    assert box.seq == 6 and box.date == 5 and box.pending == 2
    # the same range again is a duplicate container
    box.receive_updates(api.UpdatesCombined(updates=ups, users=[], chats=[], date=5, seq_start=4, seq=6), 0.1)
    assert box.pending == 2 and box.statistics().duplicates_dropped == 1
