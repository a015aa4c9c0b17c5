"""Generated objects: the dcpool.tl contract, flags, bare/boxed, results, special constructors."""

from __future__ import annotations

import gzip
import pickle
import struct

import attrs
import pytest

from dcpool import tl
from dcpool.errors import LocalProtocolError, TLDecodeError
from dcpool.tl import api, ids, mtproto


def u32(v: int) -> bytes:
    return struct.pack("<I", v)


# --------------------------------------------------------------------------- contract


def test_contract_examples() -> None:
    fn = api.help.GetConfig()
    assert fn.to_bytes() == bytes.fromhex("6b18f9c4") == bytes(fn)
    assert type(fn).CONSTRUCTOR_ID == 0xC4F9186B
    assert type(fn).QUALNAME == "help.getConfig"
    assert type(fn).IS_FUNCTION is True
    assert type(fn).RESULT_TYPE == "Config"
    assert isinstance(fn, tl.TLFunction) and isinstance(fn, tl.TLObject)

    loc = api.InputDocumentFileLocation(id=1, access_hash=2, file_reference=b"", thumb_size="")
    get = api.upload.GetFile(location=loc, offset=0, limit=524288)
    assert get.to_bytes() == (
        u32(0xBE5335BE) + u32(0) + u32(0xBAD07584) + struct.pack("<qq", 1, 2) + bytes(4) + bytes(4)
        + struct.pack("<qi", 0, 524288)
    )
    assert tl.loads(get.to_bytes()) == get
    assert api.InputDocumentFileLocation.IS_FUNCTION is False

    req = mtproto.ReqPqMulti(nonce=b"16 raw bytes....")
    assert req.to_bytes() == u32(0xBE7E8EF1) + b"16 raw bytes...."
    for cls in (mtproto.ResPQ, mtproto.PQInnerDataDc, mtproto.ReqDHParams, mtproto.ServerDHParamsOk, mtproto.MsgsAck):
        assert attrs.has(cls)
    assert mtproto.PQInnerData.QUALNAME == "p_q_inner_data"
    assert tl.LAYER == 228


def test_keyword_only_and_defaults() -> None:
    with pytest.raises(TypeError):
        api.InputPeerChat(5)  # type: ignore[misc]
    with pytest.raises(TypeError):
        api.InputPeerChat()  # required field missing
    u = api.User(id=1)
    assert u.self_ is False and u.bot is False and u.first_name is None and u.access_hash is None
    assert "self_" in attrs.fields_dict(api.User)
    assert "flags" not in attrs.fields_dict(api.User) and "flags2" not in attrs.fields_dict(api.User)
    # `flags:int` (not `#`) is an ordinary field
    assert "flags" in attrs.fields_dict(api.auth.ImportBotAuthorization)


def test_eq_repr_and_pickle() -> None:
    a = api.InputPeerUser(user_id=1, access_hash=2)
    assert a == api.InputPeerUser(user_id=1, access_hash=2)
    assert a != api.InputPeerUser(user_id=1, access_hash=3)
    assert a != api.InputUser(user_id=1, access_hash=2)
    assert repr(a) == "InputPeerUser(user_id=1, access_hash=2)"
    assert repr(api.help.GetConfig()) == "help.GetConfig()"
    f = api.upload.File(type=api.storage.FilePartial(), mtime=0, bytes=b"x" * 100000)
    r = repr(f)
    assert len(r) < 200 and "100000 bytes" in r and r.startswith("upload.File(type=storage.FilePartial()")
    assert pickle.loads(pickle.dumps(a)) == a


def test_namespaces() -> None:
    assert api.help.GetConfig is api.help.GetConfig
    assert "GetConfig" in dir(api.help)
    assert "help" in dir(api) and "InputPeerSelf" in dir(api)
    assert "ReqPqMulti" in dir(mtproto)
    with pytest.raises(AttributeError):
        api.NoSuchThing
    with pytest.raises(AttributeError):
        api.help.NoSuchThing
    from dcpool.tl.api import InputPeerSelf

    assert InputPeerSelf is api.InputPeerSelf
    assert api.True_().to_bytes() == u32(0x3FEDD339)


def test_core_shares_identical_api_classes() -> None:
    assert mtproto.IpPort is api.IpPort
    assert mtproto.help.ConfigSimple is api.help.ConfigSimple


# --------------------------------------------------------------------------- flags (§2.5)


def test_flags_and_true_fields() -> None:
    # bot:flags.14?true shares its bit with bot_info_version:flags.14?int
    u = api.User(id=7, self_=True, bot=True, bot_info_version=9, first_name="A", bot_can_edit=True, usernames=[])
    data = u.to_bytes()
    r = tl.Reader(data)
    assert r.read_uint() == api.User.CONSTRUCTOR_ID
    flags = r.read_uint()
    assert flags == (1 << 10) | (1 << 14) | (1 << 1)
    flags2 = r.read_uint()
    assert flags2 == (1 << 1) | (1 << 0)  # bot_can_edit + usernames (an empty vector is present)
    assert tl.loads(data) == u


def test_unknown_flag_bits_ignored() -> None:
    data = bytearray(api.InputPeerPhotoFileLocation(peer=api.InputPeerSelf(), photo_id=3).to_bytes())
    data[4:8] = u32(0xFFFF0000)  # bits nobody declared
    assert tl.loads(bytes(data)) == api.InputPeerPhotoFileLocation(peer=api.InputPeerSelf(), photo_id=3)


def test_shared_flag_bits() -> None:
    # auth.authorization: setup_password_required:flags.1?true otherwise_relogin_days:flags.1?int
    full = api.auth.Authorization(user=api.UserEmpty(id=1), setup_password_required=True, otherwise_relogin_days=5)
    assert tl.loads(full.to_bytes()) == full
    only_true = api.auth.Authorization(user=api.UserEmpty(id=1), setup_password_required=True)
    back = tl.loads(only_true.to_bytes())
    assert back.setup_password_required is True and back.otherwise_relogin_days == 0  # zero filled
    only_int = api.auth.Authorization(user=api.UserEmpty(id=1), otherwise_relogin_days=3)
    back = tl.loads(only_int.to_bytes())
    assert back.setup_password_required is True and back.otherwise_relogin_days == 3
    # codeSettings: token:flags.8?string app_sandbox:flags.8?Bool ; logout_tokens:flags.6?Vector<bytes>
    cs = api.CodeSettings(token="t", logout_tokens=[b"a", b"bc"])
    back = tl.loads(cs.to_bytes())
    assert back.token == "t" and back.app_sandbox is False and back.logout_tokens == [b"a", b"bc"]
    # config: three fields on flags.2
    assert sum(1 for f in api.Config._tl_params if (f.flag, f.bit) == ("flags", 2)) == 3


def test_shared_flag_object_missing_is_an_error() -> None:
    cls = api.Config
    objs = [f for f in cls._tl_params if f.flag is not None and f.type.name not in ("true",)]
    assert objs  # sanity
    # A required field missing -> LocalProtocolError, not AttributeError
    with pytest.raises(LocalProtocolError):
        api.InputPeerChat(chat_id=None).to_bytes()  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        api.InputPeerChat(chat_id=2**70).to_bytes()


# --------------------------------------------------------------------------- bare / boxed


def test_bare_vectors_and_bare_items() -> None:
    # future_salts#ae500895 req_msg_id:long now:int salts:vector<future_salt> = FutureSalts;
    fs = mtproto.FutureSalts(req_msg_id=1, now=2, salts=[mtproto.FutureSalt(valid_since=3, valid_until=4, salt=5)])
    assert fs.to_bytes() == u32(ids.FUTURE_SALTS) + struct.pack("<qii", 1, 2, 1) + struct.pack("<iiq", 3, 4, 5)
    assert tl.loads(fs.to_bytes()) == fs
    # accessPointRule: ips:vector<IpPort> -> bare vector of boxed items
    apr = mtproto.AccessPointRule(phone_prefix_rules="", dc_id=2, ips=[mtproto.IpPort(ipv4=1, port=443)])
    assert apr.to_bytes() == u32(ids.ACCESS_POINT_RULE) + bytes(4) + struct.pack("<ii", 2, 1) + u32(ids.IP_PORT) + struct.pack("<ii", 1, 443)
    assert tl.loads(apr.to_bytes()) == apr


def test_msg_container_and_message() -> None:
    ping = mtproto.Ping(ping_id=3)
    c = mtproto.MsgContainer(messages=[
        mtproto.Message(msg_id=4, seqno=1, body=ping),
        mtproto.Message(msg_id=8, seqno=3, body=tl.Raw(u32(0x11223344) + b"zzzz")),
    ])
    data = c.to_bytes()
    assert data[:8] == u32(ids.MSG_CONTAINER) + struct.pack("<i", 2)
    assert data[8:24] == struct.pack("<qii", 4, 1, 12)  # bytes computed from body
    back = tl.loads(data)
    assert back.messages[0] == mtproto.Message(msg_id=4, seqno=1, bytes=12, body=ping)
    assert back.messages[1].body == tl.Raw(u32(0x11223344) + b"zzzz")  # unknown id kept raw
    with pytest.raises(TLDecodeError):
        tl.loads(data[:-4])
    bad = bytearray(data)
    bad[20:24] = struct.pack("<i", 10**6)
    with pytest.raises(TLDecodeError):
        tl.loads(bytes(bad))


def test_rpc_result() -> None:
    res = mtproto.RpcResult(req_msg_id=5, result=mtproto.RpcError(error_code=400, error_message="X"))
    assert tl.loads(res.to_bytes()) == res
    vec = tl.pack_vector([1, 2], tl.pack_long)
    back = tl.loads(mtproto.RpcResult(req_msg_id=5, result=tl.Raw(vec)).to_bytes())
    assert back.result == tl.Raw(vec)  # untyped vector: left for fn.read_result
    assert api.messages.ReceivedQueue.read_result(back.result.data) == [1, 2]


def test_gzip_class_and_bool_classes() -> None:
    gp = mtproto.GzipPacked(packed_data=gzip.compress(api.InputPeerSelf().to_bytes()))
    assert tl.loads(gp.to_bytes()) == api.InputPeerSelf()
    assert tl.loads(api.BoolTrue().to_bytes()) is True
    assert tl.loads(api.BoolFalse().to_bytes()) is False


def test_object_fields_accept_tl_objects_and_raw() -> None:
    q = api.help.GetConfig()
    a = api.InvokeWithLayer(layer=228, query=q)
    b = api.InvokeWithLayer(layer=228, query=tl.Raw(q.to_bytes()))
    assert a.to_bytes() == b.to_bytes() == u32(ids.INVOKE_WITH_LAYER) + struct.pack("<i", 228) + q.to_bytes()
    assert tl.loads(b.to_bytes()) == a
    # {X:Type} is not serialized; initConnection inside invokeWithLayer
    init = api.InitConnection(api_id=1, device_model="d", system_version="s", app_version="a",
                              system_lang_code="en", lang_pack="", lang_code="en", query=q)
    w = api.InvokeWithLayer(layer=tl.LAYER, query=init)
    assert tl.loads(w.to_bytes()) == w


# --------------------------------------------------------------------------- results


def test_read_result_kinds() -> None:
    cfg_fn = api.help.GetNearestDc
    nd = api.NearestDc(country="NL", this_dc=2, nearest_dc=2)
    assert cfg_fn.read_result(nd.to_bytes()) == nd
    assert cfg_fn.read_result(memoryview(nd.to_bytes())) == nd
    assert cfg_fn.read_result(tl.gzip_pack(nd)) == nd  # gzip_packed result (§8.1)
    assert api.contacts.GetContactIDs.RESULT_TYPE == "Vector<int>"
    assert api.contacts.GetContactIDs.read_result(tl.pack_vector([1, -2], tl.pack_int)) == [1, -2]
    assert api.messages.ReceivedQueue.read_result(tl.gzip_pack(tl.pack_vector([9], tl.pack_long))) == [9]
    assert api.upload.SaveFilePart.read_result(tl.pack_bool(True)) is True
    users = api.users.GetUsers.read_result(tl.pack_vector([api.UserEmpty(id=5)], lambda u: u.to_bytes()))
    assert users == [api.UserEmpty(id=5)]
    with pytest.raises(TLDecodeError):
        api.upload.SaveFilePart.read_result(api.UserEmpty(id=5).to_bytes())
    with pytest.raises(TLDecodeError):
        api.contacts.GetContactIDs.read_result(b"\x15\xc4")


def test_generic_wrappers_delegate_to_query() -> None:
    inner = api.messages.ReceivedQueue(max_qts=1)
    w = api.InvokeWithLayer(layer=228, query=api.InitConnection(
        api_id=1, device_model="d", system_version="s", app_version="a", system_lang_code="en",
        lang_pack="", lang_code="en", query=api.InvokeWithoutUpdates(query=inner)))
    assert api.InvokeWithLayer.RESULT_TYPE == "X"
    assert w.read_result(tl.pack_vector([3, 4], tl.pack_long)) == [3, 4]
    # on the class, or with a Raw query: any boxed object
    nd = api.NearestDc(country="NL", this_dc=2, nearest_dc=2)
    assert api.InvokeWithLayer.read_result(nd.to_bytes()) == nd
    assert api.InvokeWithLayer(layer=1, query=tl.Raw(b"")).read_result(nd.to_bytes()) == nd


def test_upload_file_hot_path() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    f = api.upload.File(type=api.storage.FilePartial(), mtime=1, bytes=payload)
    data = f.to_bytes()
    assert api.upload.GetFile.read_result(data) == f
    assert tl.loads(data).bytes == payload


# --------------------------------------------------------------------------- layer 158


def test_api158() -> None:
    assert tl.api158.User.CONSTRUCTOR_ID == 0x8F97C628
    assert tl.api158.User is not api.User
    assert tl.api158.auth.SignUp.CONSTRUCTOR_ID == 0x80EEE427
    assert tl.api158.InputPeerSelf is api.InputPeerSelf  # same id in both layers
    u = tl.api158.User(id=3, first_name="old")
    assert tl.loads(u.to_bytes()) == u  # 158-only ids decode too
    su = tl.api158.auth.SignUp(phone_number="1", phone_code_hash="h", first_name="f", last_name="l")
    assert tl.loads(su.to_bytes()) == su
    assert tl.api158.auth.SignUp.SCHEMA == "api158"
