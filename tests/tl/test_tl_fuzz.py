"""Fuzzing the decoder: any input gives an object or TLDecodeError, never another exception."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcpool import tl
from dcpool.errors import TLDecodeError
from dcpool.tl import _runtime, api, mtproto

from tl_strategies import class_strategy

FUZZ = settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))

ALL_IDS = sorted({cid for k in ("api", "mtproto", "api158") for cid in _runtime.schema(k).by_id}
                 | {tl.ids.GZIP_PACKED, tl.ids.VECTOR, tl.ids.BOOL_TRUE, tl.ids.BOOL_FALSE})


def _decode_or_error(data: bytes) -> None:
    try:
        obj = tl.loads(data)
    except TLDecodeError:
        return
    # whatever decoded must serialize again
    if isinstance(obj, (tl.TLObject, tl.Raw)):
        obj.to_bytes()


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes(data: bytes) -> None:
    _decode_or_error(data)


@FUZZ
@given(st.sampled_from(ALL_IDS), st.binary(max_size=300))
def test_known_id_then_random_bytes(cid: int, tail: bytes) -> None:
    _decode_or_error(struct.pack("<I", cid) + tail)


INTERESTING = st.sampled_from([
    api.Config, api.Updates, api.UpdateShortMessage, api.User, api.upload.File, api.auth.Authorization,
    api.Message, api.CodeSettings, mtproto.MsgContainer, mtproto.RpcResult, mtproto.FutureSalts,
    mtproto.ResPQ, mtproto.ServerDHParamsOk, api.InvokeWithLayer,
])


@settings(FUZZ, max_examples=150)
@given(st.data())
def test_mutated_valid_objects(data: st.DataObject) -> None:
    cls = data.draw(INTERESTING)
    raw = bytearray(data.draw(class_strategy(cls)).to_bytes())
    cut = data.draw(st.integers(0, len(raw)))
    if data.draw(st.booleans()):
        _decode_or_error(bytes(raw[:cut]))  # truncated
    else:
        if cut < len(raw):
            raw[cut] ^= data.draw(st.integers(1, 255))  # one corrupted byte
        _decode_or_error(bytes(raw))


def test_every_truncation_of_a_valid_object_is_an_error() -> None:
    u = api.User(id=1, first_name="x" * 300, usernames=[api.Username(username="abc")], bot=True, bot_info_version=1)
    raw = u.to_bytes()
    for n in range(len(raw)):
        try:
            tl.loads(raw[:n])
        except TLDecodeError:
            continue
        raise AssertionError(f"truncation at {n} decoded")


@FUZZ
@given(st.binary(max_size=100))
def test_read_result_fuzz(data: bytes) -> None:
    for fn in (api.help.GetConfig, api.contacts.GetContactIDs, api.upload.SaveFilePart, api.users.GetUsers,
               api.InvokeWithLayer, mtproto.ReqPqMulti):
        try:
            fn.read_result(data)
        except TLDecodeError:
            pass


def test_deep_nesting_is_a_decode_error() -> None:
    # textBold#6724abc4 text:RichText = RichText;  nested far beyond the recursion limit
    bold = struct.pack("<I", api.TextBold.CONSTRUCTOR_ID)
    data = bold * 5000 + struct.pack("<I", api.TextEmpty.CONSTRUCTOR_ID)
    try:
        tl.loads(data)
    except TLDecodeError as exc:
        assert "deep" in str(exc)
    else:
        raise AssertionError("expected TLDecodeError")
