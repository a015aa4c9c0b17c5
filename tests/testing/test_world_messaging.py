"""The emulator's messages, channels and update history (dcpool.testing.messaging), called
through World.call like a client would, without sockets."""

from __future__ import annotations

import pytest

from dcpool import tl
from dcpool.errors import RpcError
from dcpool.testing import World
from dcpool.testing import messaging as M

api = tl.api


@pytest.fixture
def setup():
    world = World.test_cluster(require_init_connection=False)
    world.strict = True
    a = world.user_by_phone(world.test_phone(2, 1))
    b = world.user_by_phone(world.test_phone(2, 2))
    world.authorize(2, 11, a.id)
    world.authorize(2, 22, b.id)
    pushed: list[tuple[object, object]] = []
    world.set_update_sink(lambda handle, payload: pushed.append((handle, tl.loads(payload))))
    world.register_session(b.id, "b-session", layer=tl.LAYER)
    return world, a, b, pushed


def peer(user):
    return api.InputPeerUser(user_id=user.id, access_hash=user.access_hash)


def test_send_message_advances_both_boxes_and_pushes_a_short_message(setup):
    world, a, b, pushed = setup
    sent = world.call(2, 11, api.messages.SendMessage(peer=peer(b), message="hi", random_id=1))
    assert type(sent) is api.UpdateShortSentMessage and (sent.pts, sent.pts_count) == (2, 1)
    assert (a.pts, b.pts) == (2, 2)
    (handle, push), = pushed
    assert handle == "b-session" and type(push) is api.UpdateShortMessage
    assert (push.pts, push.pts_count, push.user_id, push.message) == (2, 1, a.id, "hi")


def test_get_difference_empty_full_slice_and_too_long(setup):
    world, a, b, _ = setup
    m = M.messaging(world)
    assert type(world.call(2, 22, api.updates.GetDifference(pts=b.pts, date=0, qts=0))) is api.updates.DifferenceEmpty
    for i in range(5):
        M.send_message(world, a.id, b.id, f"m{i}")
    diff = world.call(2, 22, api.updates.GetDifference(pts=1, date=0, qts=0))
    assert type(diff) is api.updates.Difference
    assert [x.message for x in diff.new_messages] == [f"m{i}" for i in range(5)]
    assert diff.state.pts == b.pts == 6
    m.difference_limit = 2
    part = world.call(2, 22, api.updates.GetDifference(pts=1, date=0, qts=0))
    assert type(part) is api.updates.DifferenceSlice and part.intermediate_state.pts == 3
    assert len(part.new_messages) == 2
    too_long = world.call(2, 22, api.updates.GetDifference(pts=1, date=0, qts=0, pts_total_limit=3))
    assert type(too_long) is api.updates.DifferenceTooLong and too_long.pts == 6
    with pytest.raises(RpcError) as err:
        world.call(2, 22, api.updates.GetDifference(pts=99, date=0, qts=0))
    assert err.value.message == "PERSISTENT_TIMESTAMP_INVALID"


def test_difference_carries_edits_deletes_reads_and_qts(setup):
    world, a, b, _ = setup
    M.send_message(world, a.id, b.id, "one")
    M.edit(world, a.id, b.id, 1, "one, edited")
    M.read(world, b.id, a.id, 1)
    M.delete(world, a.id, [1], revoke=True)
    M.bot_stopped(world, b.id, a.id)
    diff = world.call(2, 22, api.updates.GetDifference(pts=1, date=0, qts=0))
    kinds = [type(u).QUALNAME for u in diff.other_updates]
    assert kinds == ["updateEditMessage", "updateReadHistoryInbox", "updateDeleteMessages", "updateBotStopped"]
    assert [u.pts for u in diff.other_updates[:3]] == [3, 4, 5]
    assert diff.state.qts == 1 and diff.state.pts == b.pts == 5


def test_affected_messages_of_own_requests(setup):
    world, a, b, pushed = setup
    M.send_message(world, a.id, b.id, "x")
    affected = world.call(2, 22, api.messages.ReadHistory(peer=peer(a), max_id=1))
    assert (affected.pts, affected.pts_count) == (b.pts, 1)
    affected = world.call(2, 22, api.messages.DeleteMessages(revoke=True, id=[1]))
    assert (affected.pts, affected.pts_count) == (b.pts, 1)
    assert a.pts == 4  # sent, read outbox, deleted by the revoke


def test_channel_difference_slices_final_timeout_and_too_long(setup):
    world, a, b, pushed = setup
    m = M.messaging(world)
    ch = M.create_channel(world, a.id, "news", members=[b.id])
    for i in range(5):
        M.post(world, ch.id, f"p{i}")
    assert ch.pts == 6
    push = pushed[-1][1]
    assert type(push) is api.Updates and push.seq == 0 and push.chats[0].id == ch.id

    def gcd(pts, limit):
        return world.call(2, 22, api.updates.GetChannelDifference(
            channel=ch.input_channel(), filter=api.ChannelMessagesFilterEmpty(), pts=pts, limit=limit))

    first = gcd(1, 3)
    assert type(first) is api.updates.ChannelDifference and not first.final and first.pts == 4
    second = gcd(first.pts, 3)
    assert second.final and second.pts == 6 and second.timeout == ch.timeout
    assert [x.message for x in first.new_messages + second.new_messages] == [f"p{i}" for i in range(5)]
    empty = gcd(6, 3)
    assert type(empty) is api.updates.ChannelDifferenceEmpty and empty.final
    m.channel_too_long = 2
    too_long = gcd(1, 3)
    assert type(too_long) is api.updates.ChannelDifferenceTooLong and too_long.dialog.pts == 6
    assert [x.message for x in too_long.messages] == ["p2", "p3", "p4"]


def test_channel_errors(setup):
    world, a, b, _ = setup
    ch = M.create_channel(world, a.id, "closed")

    def gcd(channel):
        return world.call(2, 22, api.updates.GetChannelDifference(
            channel=channel, filter=api.ChannelMessagesFilterEmpty(), pts=1, limit=10))

    with pytest.raises(RpcError) as err:
        gcd(ch.input_channel())
    assert err.value.message == "CHANNEL_PRIVATE"
    with pytest.raises(RpcError) as err:
        gcd(api.InputChannel(channel_id=ch.id, access_hash=ch.access_hash + 1))
    assert err.value.message == "CHANNEL_INVALID"
    world.faults(2).fail("updates.getChannelDifference", 500, "PERSISTENT_TIMESTAMP_OUTDATED", count=1)
    M.join(world, ch.id, b.id)
    with pytest.raises(RpcError) as err:
        gcd(ch.input_channel())
    assert err.value.message == "PERSISTENT_TIMESTAMP_OUTDATED"
    assert type(gcd(ch.input_channel())) is api.updates.ChannelDifferenceEmpty


def test_unseen_channel_posts_come_as_channel_too_long_in_get_difference(setup):
    world, a, b, pushed = setup
    m = M.messaging(world)
    ch = M.create_channel(world, a.id, "news", members=[b.id])
    M.post(world, ch.id, "delivered")
    assert type(world.call(2, 22, api.updates.GetDifference(pts=b.pts, date=0, qts=0))) is api.updates.DifferenceEmpty
    m.faults.drop_next = 1
    M.post(world, ch.id, "dropped")
    diff = world.call(2, 22, api.updates.GetDifference(pts=b.pts, date=0, qts=0))
    (update,) = diff.other_updates
    assert type(update) is api.UpdateChannelTooLong and (update.channel_id, update.pts) == (ch.id, ch.pts)


def test_push_faults_drop_duplicate_reorder_delay(setup):
    world, a, b, pushed = setup
    m = M.messaging(world)

    def texts():
        return [p.message for _, p in pushed]

    m.faults.drop_next = 1
    M.send_message(world, a.id, b.id, "dropped")
    m.faults.duplicate_next = 1
    M.send_message(world, a.id, b.id, "twice")
    m.faults.reorder_next = 1
    M.send_message(world, a.id, b.id, "late")
    M.send_message(world, a.id, b.id, "early")
    m.faults.delaying = True
    M.send_message(world, a.id, b.id, "held")
    assert texts() == ["twice", "twice", "early", "late"]
    assert m.release() == 1
    assert texts()[-1] == "held"
    counts = (m.faults.dropped, m.faults.duplicated, m.faults.reordered, m.faults.delayed)
    assert counts == (1, 1, 1, 1)


def test_control_helpers_validate(setup):
    world, a, b, _ = setup
    with pytest.raises(Exception):
        M.edit(world, a.id, b.id, 42, "no such message")
    with pytest.raises(Exception):
        M.post(world, 999, "no such channel")
    assert M.delete(world, a.id, [42]) is None


def test_control_commands(setup):
    from types import SimpleNamespace

    from dcpool.testing.control import Controller

    world, a, b, pushed = setup
    ctl = Controller(SimpleNamespace(world=world))

    def control(cmd, args=None):
        answer = ctl.handle({"cmd": cmd, **(args or {})})
        if not answer["ok"]:
            raise ValueError(answer["error"])
        return answer["result"]

    out = control("send_message", {"from_user": a.phone, "to_user": b.id, "text": "hey"})
    assert out == {"sender": {"pts": 2, "pts_count": 1, "message_id": 1},
                   "receiver": {"pts": 2, "pts_count": 1, "message_id": 1}}
    ch = control("create_channel", {"creator": a.id, "title": "t", "members": [b.phone]})
    assert control("post", {"channel_id": ch["channel_id"], "text": "p"})["pts"] == 2
    control("push_faults", {"drop_next": 1})
    control("edit", {"user": a.id, "peer": b.id, "message_id": 1, "text": "hey!"})
    assert control("push_faults")["dropped"] == 1
    assert control("delete", {"user": a.id, "ids": [1]})["pts_count"] == 1
    assert control("updates_state", {"user": b.id}) == {"pts": b.pts, "qts": 0, "seq": b.seq}
    with pytest.raises(ValueError, match="unknown command"):
        control("nope")
    with pytest.raises(ValueError, match="unknown parameter"):
        control("send_message", {"bogus": 1})
