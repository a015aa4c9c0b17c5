"""Where the manager's dropped duplicates come from, counted exactly on trio's fake clock.

The soak (tools/updates_soak.py) drops thousands of updates as duplicates while the emulator
repeats only a few hundred pushes.  The rest are pushes that a difference returned as well: the
pushes waiting in a gap buffer for the missing one, and those received while the difference is
in flight (a difference answers everything after our pts, UPDATES.md §3.1).  That is expected,
so the statistics say it apart: ``duplicate_pushes`` (the same push twice) and
``already_applied`` (once by push, once by difference); ``duplicates_dropped`` is their sum.
"""

from __future__ import annotations

import trio

from dcpool.testing import messaging as M
from dcpool.updates import Update, open_updates

from ._world_pool import WorldPool, settle, two_users

GD = "updates.getDifference"
GCD = "updates.getChannelDifference"


def text_of(item) -> str | None:
    message = getattr(getattr(item, "update", None), "message", None)
    return getattr(message, "message", None)


async def take(stream, n: int) -> list:
    items = []
    async for item in stream:
        items.append(item)
        await stream.ack(item)
        if len(items) == n:
            break
    return items


def counts(stream) -> tuple[int, int, int]:
    s = stream.statistics()
    return s.duplicates_dropped, s.duplicate_pushes, s.already_applied


async def test_no_faults_no_duplicates(clock):
    """Every kind of update the emulator pushes, private and channel: nothing is pushed twice
    (no short form plus container, no push the pool hands over twice)."""
    world, a, b = two_users()
    pool = WorldPool(world, b.id)
    with trio.fail_after(60):
        async with open_updates(pool) as stream:
            await settle()
            ch = M.create_channel(world, a.id, "c", members=[b.id])
            stream.track_channel(ch.id, ch.access_hash, ch.pts)
            sent, _ = M.send_message(world, a.id, b.id, "m0")
            M.send_message(world, a.id, b.id, "m1")
            M.post(world, ch.id, "p0")
            M.post(world, ch.id, "p1")
            M.edit(world, a.id, b.id, sent.update.message.id, "m0 edited")
            _, got = M.send_message(world, b.id, a.id, "to a", push_to_sender=True)  # b's other session
            M.read(world, a.id, b.id, got.update.message.id)  # pushed to b: read outbox, short form
            await settle(2)
            items = []
            while stream.statistics().pending:
                items += await take(stream, 1)
    assert len(items) == 7 and all(isinstance(i, Update) for i in items)
    assert counts(stream) == (0, 0, 0)
    assert pool.calls[GD] == 0 and pool.calls[GCD] == 0


async def test_repeated_pushes_are_duplicate_pushes(clock):
    world, a, b = two_users()
    pool = WorldPool(world, b.id)
    with trio.fail_after(60):
        async with open_updates(pool) as stream:
            await settle()
            M.messaging(world).faults.duplicate_next = 3
            for i in range(5):
                M.send_message(world, a.id, b.id, f"m{i}")
            items = await take(stream, 5)
            await settle(2)
            assert stream.statistics().pending == 0
    assert [text_of(i) for i in items] == [f"m{i}" for i in range(5)]
    assert counts(stream) == (3, 3, 0)
    assert pool.calls[GD] == 0


async def test_pushes_held_in_a_gap_are_already_applied_by_the_difference(clock):
    """One push lost, five after it wait in the gap buffer; the difference returns all six, so
    the five waiting pushes are dropped as already applied; a repeated one of them is still a
    duplicate push."""
    world, a, b = two_users()
    m = M.messaging(world)
    pool = WorldPool(world, b.id)
    with trio.fail_after(60):
        async with open_updates(pool) as stream:
            await settle()
            m.faults.drop_next = 1
            M.send_message(world, a.id, b.id, "lost")
            for i in range(4):
                M.send_message(world, a.id, b.id, f"held{i}")
            m.faults.duplicate_next = 1
            M.send_message(world, a.id, b.id, "held4")
            items = await take(stream, 6)
            await settle(2)
            assert stream.statistics().pending == 0
    assert [text_of(i) for i in items] == ["lost"] + [f"held{i}" for i in range(5)]
    assert pool.calls[GD] == 1
    assert counts(stream) == (6, 1, 5)


async def test_channel_pushes_held_in_a_gap_are_already_applied(clock):
    world, a, b = two_users()
    m = M.messaging(world)
    pool = WorldPool(world, b.id)
    with trio.fail_after(60):
        async with open_updates(pool) as stream:
            await settle()
            ch = M.create_channel(world, a.id, "c", members=[b.id])
            stream.track_channel(ch.id, ch.access_hash, ch.pts)
            m.faults.drop_next = 1
            M.post(world, ch.id, "lost")
            for i in range(3):
                M.post(world, ch.id, f"held{i}")
            items = await take(stream, 4)
            await settle(2)
            assert stream.statistics().pending == 0
    assert [text_of(i) for i in items] == ["lost", "held0", "held1", "held2"]
    assert pool.calls[GCD] == 1
    assert counts(stream) == (3, 0, 3)


async def test_push_during_a_difference_is_already_applied(clock):
    """A push received while the difference that returns it too is in flight."""
    world, a, b = two_users()
    m = M.messaging(world)
    pool = WorldPool(world, b.id, rtt=0.2)
    with trio.fail_after(60):
        async with open_updates(pool) as stream:
            await settle(1)  # getState is answered (at 0.2 s)
            m.faults.drop_next = 1
            M.send_message(world, a.id, b.id, "lost")
            M.send_message(world, a.id, b.id, "gap")
            await trio.sleep(0.55)  # the difference is on its way (answered at 0.7 s)
            assert pool.running[GD] == 1
            M.send_message(world, a.id, b.id, "during")
            items = await take(stream, 3)
            await settle(2)
            assert stream.statistics().pending == 0
    assert [text_of(i) for i in items] == ["lost", "gap", "during"]
    assert counts(stream) == (2, 0, 2)
