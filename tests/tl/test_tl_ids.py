"""tl.ids: literal constants, checked against the schemas."""

from __future__ import annotations

import re
import subprocess
import sys

from dcpool.tl import _runtime, ids
from dcpool.tl.schema_parser import camel_name


def _constants() -> dict[str, int]:
    return {k: v for k, v in vars(ids).items() if re.fullmatch(r"[A-Z][A-Z0-9_]*", k) and isinstance(v, int)}


def _const_name(qualname: str) -> str:
    s = qualname.replace(".", "_")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", s).upper()


def test_every_constant_matches_the_schema() -> None:
    consts = _constants()
    assert set(consts.values()) == set(ids.NAMES)
    by_name = {}
    for kind in ("mtproto", "api"):
        for c in _runtime.schema(kind).combinators:
            by_name.setdefault(c.name, c)
    by_name["vector"] = next(b for b in _runtime.schema("api").builtins if b.name == "vector")
    for const, value in consts.items():
        assert 0 <= value < 2**32, const
        qualname = ids.NAMES[value] if const != "VECTOR" else "vector"
        # invokeWith...Prefix share ids with the wrappers: NAMES keeps the first schema name.
        candidates = [q for q, c in by_name.items() if c.id == value]
        assert qualname in candidates, (const, hex(value))
        assert any(_const_name(q) == const for q in candidates), const


def test_required_constants_present() -> None:
    for name in (
        "RPC_RESULT RPC_ERROR MSG_CONTAINER GZIP_PACKED MSGS_ACK BAD_SERVER_SALT BAD_MSG_NOTIFICATION "
        "NEW_SESSION_CREATED PONG PING PING_DELAY_DISCONNECT FUTURE_SALTS MSGS_STATE_REQ MSGS_STATE_INFO "
        "MSGS_ALL_INFO MSG_DETAILED_INFO MSG_NEW_DETAILED_INFO MSG_RESEND_REQ DESTROY_SESSION VECTOR "
        "BOOL_TRUE BOOL_FALSE UPLOAD_FILE INVOKE_WITH_LAYER INIT_CONNECTION INVOKE_WITHOUT_UPDATES "
        "INVOKE_AFTER_MSG UPDATES UPDATE_SHORT UPDATES_TOO_LONG UPDATES_COMBINED UPDATE_SHORT_MESSAGE "
        "UPDATE_SHORT_CHAT_MESSAGE UPDATE_SHORT_SENT_MESSAGE MESSAGE"
    ).split():
        assert isinstance(getattr(ids, name), int), name
    # spot checks against spec §19 V1 / §3.6 / §8
    assert ids.VECTOR == 0x1CB5C415
    assert ids.MSG_CONTAINER == 0x73F1F8DC
    assert ids.RPC_RESULT == 0xF35C6D01
    assert ids.GZIP_PACKED == 0x3072CFA1
    assert ids.MESSAGE == 0x5BB8E511
    assert ids.INVOKE_WITH_LAYER == 0xDA9B0D0D
    assert ids.UPLOAD_FILE == 0x096A18D5


def test_ids_match_classes() -> None:
    from dcpool import tl

    assert tl.api.upload.File.CONSTRUCTOR_ID == ids.UPLOAD_FILE
    assert tl.mtproto.MsgContainer.CONSTRUCTOR_ID == ids.MSG_CONTAINER
    assert tl.mtproto.RpcResult.CONSTRUCTOR_ID == ids.RPC_RESULT
    assert camel_name("msg_container") == "MsgContainer"


def test_importing_ids_parses_no_schema() -> None:
    code = "import sys, dcpool.tl.ids; print('dcpool.tl._runtime' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
