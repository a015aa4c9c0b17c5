"""Every layer 133..228 (and above) through World.handle: answers in the client's layer,
requests of any layer read, updates encoded once per answer layer (dcpool.testing.layers)."""

from __future__ import annotations

import random

import pytest
from _layer_check import assert_in_layer, cls_at, make, wrap

from dcpool import tl
from dcpool.testing.layers import answer_layer, exists_in, from_layer, is_served, to_layer
from dcpool.testing.world import ConnectionContext, World

api = tl.api
ALL_LAYERS = list(range(133, 229)) + [229, 240]


def test_answer_layer_and_served_range():
    assert answer_layer(229) == answer_layer(228) == 228
    assert answer_layer(194) == 193 and answer_layer(133) == 135
    assert is_served(133) and not is_served(132)
    assert exists_in("user", 133) and not exists_in("storyItem", 133) and exists_in("storyItem", 228)


@pytest.mark.parametrize("layer", ALL_LAYERS)
def test_every_layer_signs_in_and_reads_what_the_emulator_sends(layer):
    w = World.test_cluster(rng=random.Random(layer).randbytes)
    ctx = ConnectionContext()
    key = 1000 + layer
    effective = min(layer, 228)

    def call(query):
        data = w.handle(1, ctx, key, query.to_bytes(), 100.0)
        inner = query
        while type(inner).QUALNAME in ("invokeWithLayer", "initConnection"):
            inner = inner.query
        result = type(inner).read_result(data)
        assert_in_layer(result, effective, type(inner).QUALNAME)
        return result

    config = call(wrap(layer, make("help.getConfig", effective)))
    assert type(config) is cls_at("config", effective)
    phone = w.test_phone(1, layer)
    sent = call(make("auth.sendCode", effective, phone_number=phone, api_id=1, api_hash="h",
                     settings=make("codeSettings", effective)))
    auth = call(make("auth.signIn", effective, phone_number=phone,
                     phone_code_hash=sent.phone_code_hash, phone_code=w.login_code(phone, 1)))
    assert type(auth.user) is cls_at("user", effective)
    assert auth.user.id == w.phones[phone] and auth.user.phone == phone
    users = call(make("users.getUsers", effective, id=[make("inputUserSelf", effective)]))
    assert users[0].id == auth.user.id
    full = call(make("users.getFullUser", effective, id=make("inputUserSelf", effective)))
    assert type(full.full_user) is cls_at("userFull", effective)
    state = call(make("updates.getState", effective))
    call(make("updates.getDifference", effective, pts=state.pts, date=state.date, qts=state.qts))
    call(make("help.getNearestDc", effective))
    assert w.internal_errors == []


def test_old_config_gets_meaningful_limits():
    w = World.test_cluster(rng=random.Random(1).randbytes)
    old = tl.loads(w.handle(1, ConnectionContext(), 5, wrap(140, make("help.getConfig", 140)).to_bytes(), 0.0))
    assert type(old).CONSTRUCTOR_ID == 0x330B4067
    assert (old.pinned_dialogs_count_max, old.saved_gifs_limit) == (5, 200)


def test_round_trip_keeps_what_both_layers_have():
    user = api.User(
        id=1 << 40, access_hash=-5, first_name="A", last_name="B", username="ab", phone="999",
        self_=True, premium=True, close_friend=True,
        status=api.UserStatusOnline(expires=9),
        photo=api.UserProfilePhoto(photo_id=3, dc_id=2),
        usernames=[api.Username(username="ab", active=True)],
        stories_max_id=api.RecentStory(max_id=4),
    )
    for layer in (133, 158, 185, 198, 220):
        old = to_layer(user, layer)
        assert type(old) is cls_at("user", layer)
        back = from_layer(tl.loads(old.to_bytes()))
        assert type(back) is api.User
        assert (back.id, back.access_hash, back.first_name, back.username, back.phone) == (
            1 << 40, -5, "A", "ab", "999")
        assert back.self_ and back.premium
        assert back.status == user.status and back.photo.photo_id == 3
        # a field whose type changed (int before 217, RecentStory after) is left out
        assert (back.stories_max_id is None) == (layer < 217)
    assert to_layer(user, 228) is user and to_layer(user, 229) is user
    assert user.close_friend and type(user) is api.User  # the original is untouched


def test_unchanged_trees_are_not_copied():
    dc = api.DcOption(id=1, ip_address="127.0.0.1", port=1)
    lst = [dc]
    assert to_layer(lst, 158) is lst and to_layer(dc, 133) is dc
    q = api.upload.GetFile(location=api.InputDocumentFileLocation(id=1, access_hash=2, file_reference=b"", thumb_size=""), offset=0, limit=1024)
    assert from_layer(q) is q


def test_requests_of_old_layers_become_228_classes():
    q = tl.api158.updates.GetDifference(pts=1, date=0, qts=0)
    new = from_layer(q)
    assert type(new) is api.updates.GetDifference and (new.pts, new.date, new.qts) == (1, 0, 0)
    old_signup = make("auth.signUp", 158, phone_number="1", phone_code_hash="h", first_name="f", last_name="l")
    new = from_layer(tl.loads(old_signup.to_bytes()))
    assert type(new) is api.auth.SignUp and new.first_name == "f"


def test_updates_are_encoded_in_the_target_session_layer():
    w = World.test_cluster(rng=random.Random(3).randbytes)
    uid = w.user_by_phone(w.test_phone(1, 1)).id
    sent: list[bytes] = []
    w.set_update_sink(lambda h, p: sent.append(p))
    me = w.user(uid).to_tl(is_self=True)
    for layer in (158, 193, 194, 220, 228, 229):
        w.register_session(uid, ConnectionContext(layer=layer))  # now the last active one
        assert w.push_update(uid, api.Updates(updates=[], users=[me], chats=[], date=1, seq=0)) == 1
        user = tl.loads(sent[-1]).users[0]
        assert type(user) is cls_at("user", layer) and user.id == uid
    assert sent[1] == sent[2] and sent[4] == sent[5]  # 194 reads as 193, 229 as 228
