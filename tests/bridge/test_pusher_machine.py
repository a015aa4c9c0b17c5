import json

import pusher
import pytest

from dcpool.bridge.pusher import (Close, PusherAuthError, PusherConnection, Send, account_channel,
                                  authorize_channel, sign_channel)

KEY, SECRET = "appkey", "appsecret"
CH = account_channel("acc")


def frames(outputs):
    return [json.loads(o.text) for o in outputs if isinstance(o, Send)]


def machine(now=0.0):
    return PusherConnection(socket_id="123.456", key=KEY, secret=SECRET, now=now,
                            activity_timeout=120, pong_timeout=30, channel_exists=lambda c: c == CH)


def test_signature_matches_official_pusher_library():
    official = pusher.Pusher(app_id="1", key=KEY, secret=SECRET)
    expected = official.authenticate(channel=CH, socket_id="123.456")
    assert authorize_channel(KEY, SECRET, "123.456", CH, lambda c: True) == expected


@pytest.mark.parametrize("socket_id", ["1.1:private-other", "abc", "1", "1.2.3", "", "1.2\n"])
def test_auth_refuses_malformed_socket_ids(socket_id):
    with pytest.raises(PusherAuthError):
        authorize_channel(KEY, SECRET, socket_id, CH, lambda c: True)


def test_auth_refuses_public_and_unknown_channels():
    with pytest.raises(PusherAuthError):
        authorize_channel(KEY, SECRET, "1.2", "public", lambda c: True)
    with pytest.raises(PusherAuthError):
        authorize_channel(KEY, SECRET, "1.2", "private-x", lambda c: False)


def test_established_subscribe_publish():
    m = machine()
    (est,) = frames(m.established())
    assert est["event"] == "pusher:connection_established"
    assert json.loads(est["data"]) == {"socket_id": "123.456", "activity_timeout": 120}
    assert m.publish(CH, "message", "{}") == []  # not subscribed yet
    bad = frames(m.receive(json.dumps({"event": "pusher:subscribe", "data": {"channel": CH, "auth": f"{KEY}:00"}}), 1))
    assert bad[0]["event"] == "pusher:subscription_error" and json.loads(bad[0]["data"])["status"] == 401
    other_socket = f"{KEY}:{sign_channel(SECRET, '9.9', CH)}"
    bad = frames(m.receive(json.dumps({"event": "pusher:subscribe", "data": {"channel": CH, "auth": other_socket}}), 1))
    assert bad[0]["event"] == "pusher:subscription_error"
    ok = frames(m.receive(json.dumps({"event": "pusher:subscribe", "data": {"channel": CH, "auth": f"{KEY}:{sign_channel(SECRET, '123.456', CH)}"}}), 1))
    assert ok[0] == {"event": "pusher_internal:subscription_succeeded", "channel": CH, "data": "{}"}
    (msg,) = frames(m.publish(CH, "message", json.dumps({"id": 1})))
    assert msg == {"event": "message", "channel": CH, "data": '{"id": 1}'}
    m.receive(json.dumps({"event": "pusher:unsubscribe", "data": {"channel": CH}}), 2)
    assert m.publish(CH, "message", "{}") == []


def test_ping_pong_and_activity_timeout():
    m = machine()
    assert frames(m.receive('{"event":"pusher:ping","data":{}}', 5))[0]["event"] == "pusher:pong"
    assert m.poll(124) == []
    assert frames(m.poll(125))[0]["event"] == "pusher:ping"
    assert m.poll(154) == []
    m.receive('{"event":"pusher:pong","data":{}}', 154)
    assert m.poll(200) == [] and m.next_deadline() == 274
    assert frames(m.poll(274))[0]["event"] == "pusher:ping"
    assert m.poll(304) == [Close(4201, "Pong reply not received")]


def test_bad_input_and_client_events():
    m = machine()
    assert frames(m.receive("not json", 0))[0]["event"] == "pusher:error"
    assert frames(m.receive('{"event": 5}', 0))[0]["event"] == "pusher:error"
    assert frames(m.receive('{"event":"client-x","channel":"private-a","data":"{}"}', 0))[0]["event"] == "pusher:error"
    assert m.receive('{"event":"whatever"}', 0) == []


def test_url_checks():
    assert PusherConnection.check_url(f"/app/{KEY}", {"protocol": "7"}, KEY) is None
    assert PusherConnection.check_url("/app/other", {"protocol": "7"}, KEY).code == 4001
    assert PusherConnection.check_url(f"/app/{KEY}", {"protocol": "3"}, KEY).code == 4007
