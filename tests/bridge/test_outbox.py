import trio

from dcpool.bridge.events import NewEvent
from dcpool.bridge.outbox import Outbox, StaleLease, open_outbox_db


def ev(key, chat="user:1"):
    return NewEvent("message", "message.new", chat, key, {"text": key})


def test_append_numbers_dedupes_and_keeps_state(outbox_target):
    db = open_outbox_db(outbox_target)
    ids = db.append("a", [ev("k1"), ev("k2")], {"pts": 2})
    assert ids == [ids[0], ids[0] + 1]
    again = db.append("a", [ev("k2"), ev("k3")], {"pts": 3})
    assert again == [ids[1] + 1]
    assert db.load_state("a") == {"pts": 3}
    assert [e.dedupe_key for e in db.read_after(0)] == ["k1", "k2", "k3"]
    assert [e.dedupe_key for e in db.read_after(ids[0])] == ["k2", "k3"]
    db.close()
    db = open_outbox_db(outbox_target)  # durable across reopen
    assert db.last_id() == ids[1] + 1
    assert db.load_state("a") == {"pts": 3}
    db.close()


def test_stale_epoch_writes_nothing(outbox_target):
    db = open_outbox_db(outbox_target)
    db.append("a", [ev("k1")], {"pts": 1}, epoch=2)
    try:
        db.append("a", [ev("k2")], {"pts": 2}, epoch=1)
    except StaleLease:
        pass
    else:
        raise AssertionError("stale epoch accepted")
    assert db.load_state("a") == {"pts": 1}
    assert [e.dedupe_key for e in db.read_after(0)] == ["k1"]
    db.close()


def test_hook_progress_and_cursor(outbox_target):
    db = open_outbox_db(outbox_target)
    ids = db.append("a", [ev(f"k{i}") for i in range(5)])
    pending, disabled = db.hook_pending("h", 10)
    assert [e.id for e in pending] == ids and not disabled
    db.hook_settle("h", ids[1], "delivered")
    db.hook_settle("h", ids[0], "dropped")
    pending, _ = db.hook_pending("h", 10)
    assert [e.id for e in pending] == ids[2:]
    assert db.hook_backlog("h") == {"pending": 3, "disabled": 0, "dropped": 1}
    db.hook_disable("h")
    assert db.hook_pending("h", 10)[1] is True
    db.close()


def test_leases_fence_and_expire(outbox_target):
    now = [1000.0]
    db = open_outbox_db(outbox_target, clock=lambda: now[0])
    a = db.lease_claim("acc", "p1", ttl=10)
    assert a.epoch == 1
    assert db.lease_claim("acc", "p2", ttl=10) is None
    now[0] += 5
    a = db.lease_renew(a, ttl=10)
    assert a is not None
    now[0] += 11  # p1 paused past its TTL
    b = db.lease_claim("acc", "p2", ttl=10)
    assert b.epoch == 2 and b.owner == "p2"
    assert db.lease_renew(a, ttl=10) is None
    db.close()


async def test_async_outbox_wakes_readers(tmp_path):
    outbox = Outbox(open_outbox_db(str(tmp_path / "o.db")), poll_interval=30)
    seen = []

    async def reader():
        await outbox.wait_for_new()
        seen.extend(await outbox.read_after(0))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await trio.sleep(0.01)
            await outbox.append("a", [ev("x")], {"pts": 1})
    assert [e.dedupe_key for e in seen] == ["x"]
    await outbox.aclose()
