"""Schema parsing (spec §2, §19 V1): every line parses, CRC32 ids, package copies, naming."""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import pytest

from dcpool.tl import _runtime
from dcpool.tl.schema_parser import (
    SchemaSyntaxError,
    camel_name,
    iter_declarations,
    normalize,
    parse_line,
    parse_schema,
    parse_type,
)

PKG_SCHEMA = Path(_runtime.__file__).parent / "schema"
SPEC_SCHEMA = Path("/work/shared/spec/schema")


def _text(name: str) -> str:
    return (PKG_SCHEMA / name).read_text(encoding="utf-8")


# Ids of layer 228 that do not follow the CRC32 rule (spec §19 V1), and why.
CRC_EXCEPTIONS = {
    # The id was computed from the line *without* the bytes->string step.
    "ipPortSecret": "crc32('ipPortSecret ipv4:int port:int secret:bytes = IpPort')",
    # Part of the RSA-signed "simple config" blob fetched over DNS/HTTPS, not over MTProto; the
    # ids were assigned by hand (tdesktop and Telethon carry the same explicit ids).
    "accessPointRule": None,
    "help.configSimple": None,
    # Renamed obsolete constructors: the id is the CRC of the old name (without "Legacy").
    "inputPeerPhotoFileLocationLegacy": "old name",
    "inputStickerSetThumbLegacy": "old name",
    # tdlib helpers: the id of the real wrapper, i.e. the CRC of the wrapper with its query.
    "invokeWithBusinessConnectionPrefix": "wrapper",
    "invokeWithGooglePlayIntegrityPrefix": "wrapper",
    "invokeWithApnsSecretPrefix": "wrapper",
    "invokeWithReCaptchaPrefix": "wrapper",
}


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("fname", ["api.tl", "mtproto.tl", "api158.tl"])
def test_every_line_of_the_package_schemas_parses(fname: str) -> None:
    text = _text(fname)
    decls = list(iter_declarations(text))
    combs = parse_schema(text)
    assert len(combs) == len(decls)
    # every non-comment, non-section line is a declaration
    content = [ln for ln in text.splitlines() if ln.split("//", 1)[0].strip() and not ln.startswith("---")]
    assert len(content) == len(decls)


@pytest.mark.skipif(not SPEC_SCHEMA.exists(), reason="spec schemas not available")
@pytest.mark.parametrize("fname", sorted(p.name for p in SPEC_SCHEMA.glob("*.tl")) if SPEC_SCHEMA.exists() else [])
def test_every_spec_schema_parses(fname: str) -> None:
    combs = parse_schema((SPEC_SCHEMA / fname).read_text(encoding="utf-8"))
    assert combs


def test_counts() -> None:
    api = _runtime.schema("api")
    # spec §19 V1: 2460 explicit ids (vector#1cb5c415 is a built-in, not a class)
    assert len([c for c in api.combinators + api.builtins if c.id is not None]) == 2460
    assert len(_runtime.schema("api158").combinators) == 1619
    assert "// LAYER 158" in _text("api158.tl")


def test_builtin_lines_parse() -> None:
    for line in ("int ? = Int;", "int128 4*[ int ] = Int128;", "vector {t:Type} # [ t ] = Vector t;", "bytes = Bytes;"):
        assert parse_line(line).builtin
    v = parse_line("vector#1cb5c415 {t:Type} # [ t ] = Vector t;")
    assert v.builtin and v.id == 0x1CB5C415 and v.crc32() == v.id


@pytest.mark.parametrize(
    "line",
    ["nonsense", "a:int = B", "x#zz = Y;", "x a:flags.0?int = Y;", "x a:Vector<int = Y;", "x a:in$t = Y;"],
)
def test_bad_lines_rejected(line: str) -> None:
    with pytest.raises(SchemaSyntaxError):
        parse_line(line)


def test_parse_type() -> None:
    t = parse_type("Vector<Vector<TlsBlock>>")
    assert t.name == "Vector" and t.item.name == "Vector" and t.item.item.name == "TlsBlock"
    assert parse_type("%Message").is_bare_name
    assert parse_type("future_salt").is_bare_name
    assert not parse_type("FutureSalt").is_bare_name
    assert parse_type("storage.FileType").is_bare_name is False
    assert parse_type("!X").bang
    p = parse_line("a#1 flags2:# x:flags2.3?Vector<bytes> = A;").params[1]
    assert (p.flag, p.bit, str(p.type)) == ("flags2", 3, "Vector<bytes>")


# --------------------------------------------------------------------------- CRC32 (§2.6, §19 V1)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("vector#1cb5c415 {t:Type} # [ t ] = Vector t;", 0x1CB5C415),
        ("int ? = Int;", 0xA8509BDA),
        ("long ? = Long;", 0x22076CBA),
        ("double ? = Double;", 0x2210C154),
        ("string ? = String;", 0xB5286E24),
        ("true#3fedd339 = True;", 0x3FEDD339),
        ("req_pq_multi#be7e8ef1 nonce:int128 = ResPQ;", 0xBE7E8EF1),
        ("resPQ#05162463 nonce:int128 server_nonce:int128 pq:bytes server_public_key_fingerprints:Vector<long> = ResPQ;", 0x05162463),
        ("message msg_id:long seqno:int bytes:int body:Object = Message;", 0x5BB8E511),
        ("msg_container#73f1f8dc messages:vector<message> = MessageContainer;", 0x73F1F8DC),
        ("gzip_packed#3072cfa1 packed_data:bytes = Object;", 0x3072CFA1),
        ("invokeWithLayer#da9b0d0d {X:Type} layer:int query:!X = X;", 0xDA9B0D0D),
        ("int128 4*[ int ] = Int128;", 0x84CCF7B7),
        ("int256 8*[ int ] = Int256;", 0x7BEDEB5B),
    ],
)
def test_v1_vectors(line: str, expected: int) -> None:
    assert zlib.crc32(normalize(line).encode()) == expected


def test_normalize_rules() -> None:
    line = "codeSettings#ad253d78 flags:# allow_flashcall:flags.0?true logout_tokens:flags.6?Vector<bytes> token:flags.8?bytes x:bytes = CodeSettings;"
    assert normalize(line) == "codeSettings flags:# logout_tokens:flags.6?Vector bytes token:flags.8?string x:string = CodeSettings"


@pytest.mark.parametrize("kind", ["api", "mtproto", "api158"])
def test_crc_of_every_declaration(kind: str) -> None:
    bad = {c.name for c in _runtime.schema(kind).combinators if c.id is not None and c.crc32() != c.id}
    expected = {"api": set(CRC_EXCEPTIONS),
                "mtproto": {"ipPortSecret", "accessPointRule", "help.configSimple"},
                "api158": set()}[kind]
    assert bad == expected


def test_crc_exceptions_explained() -> None:
    api = _runtime.schema("api")
    assert zlib.crc32(b"ipPortSecret ipv4:int port:int secret:bytes = IpPort") == api.by_name["ipPortSecret"].id
    for legacy in ("inputPeerPhotoFileLocationLegacy", "inputStickerSetThumbLegacy"):
        c = api.by_name[legacy]
        assert zlib.crc32(c.normalized().replace("Legacy", "", 1).encode()) == c.id
    for prefix in [n for n, why in CRC_EXCEPTIONS.items() if why == "wrapper"]:
        c = api.by_name[prefix]
        wrapper = api.by_name[prefix.removesuffix("Prefix")]
        assert wrapper.id == c.id and wrapper.crc32() == c.id
        assert wrapper.params[: len(c.params)] and [p.name for p in wrapper.params][:-1] == [p.name for p in c.params]


# --------------------------------------------------------------------------- package copies


@pytest.mark.skipif(not SPEC_SCHEMA.exists(), reason="spec schemas not available")
def test_api_copies_are_verbatim() -> None:
    assert _text("api.tl") == (SPEC_SCHEMA / "tdlib-telegram_api.tl").read_text(encoding="utf-8")
    assert _text("api158.tl") == (SPEC_SCHEMA / "pyrogram-main_api.tl").read_text(encoding="utf-8")


BINARY_FIELDS = {
    "resPQ": {"pq"},
    "p_q_inner_data": {"pq", "p", "q"},
    "p_q_inner_data_dc": {"pq", "p", "q"},
    "p_q_inner_data_temp": {"pq", "p", "q"},
    "p_q_inner_data_temp_dc": {"pq", "p", "q"},
    "server_DH_params_ok": {"encrypted_answer"},
    "server_DH_inner_data": {"dh_prime", "g_a"},
    "client_DH_inner_data": {"g_b"},
    "req_DH_params": {"p", "q", "encrypted_data"},
    "set_client_DH_params": {"encrypted_data"},
    "msgs_state_info": {"info"},
    "msgs_all_info": {"info"},
}


@pytest.mark.skipif(not SPEC_SCHEMA.exists(), reason="spec schemas not available")
def test_core_copy_differs_only_in_binary_fields() -> None:
    ours = {c.name: c for c in parse_schema(_text("mtproto.tl"))}
    theirs = {c.name: c for c in parse_schema((SPEC_SCHEMA / "tdesktop-mtproto.tl").read_text(encoding="utf-8"))}
    assert ours.keys() == theirs.keys()
    assert _text("mtproto.tl").startswith("// dcpool copy")
    for name, c in ours.items():
        t = theirs[name]
        assert c.id == t.id and c.normalized() == t.normalized(), name  # wire and CRC unchanged
        changed = {p.name for p, q in zip(c.params, t.params) if str(p) != str(q)}
        assert changed == BINARY_FIELDS.get(name, set()), name
        for p in c.params:
            if p.name in changed:
                assert p.type.name == "bytes"


def test_core_binary_fields_decode_as_bytes() -> None:
    from dcpool.tl import mtproto

    r = mtproto.ResPQ(nonce=bytes(16), server_nonce=bytes(16), pq=b"\x17\xed", server_public_key_fingerprints=[1])
    assert mtproto.ResPQ.from_bytes(r.to_bytes()).pq == b"\x17\xed"
    e = mtproto.RpcError(error_code=420, error_message="FLOOD_WAIT_3")
    assert mtproto.RpcError.from_bytes(e.to_bytes()).error_message == "FLOOD_WAIT_3"


# --------------------------------------------------------------------------- naming


@pytest.mark.parametrize(
    ("schema_name", "camel"),
    [("p_q_inner_data_dc", "PQInnerDataDc"), ("req_DH_params", "ReqDHParams"), ("resPQ", "ResPQ"),
     ("getConfig", "GetConfig"), ("inputDocumentFileLocation", "InputDocumentFileLocation"),
     ("server_DH_params_ok", "ServerDHParamsOk"), ("msgs_ack", "MsgsAck")],
)
def test_camel_names(schema_name: str, camel: str) -> None:
    assert camel_name(schema_name) == camel


@pytest.mark.parametrize("kind", ["api", "mtproto", "api158"])
def test_no_name_collisions(kind: str) -> None:
    """A constructor and a function with one CamelName in one namespace would need the
    documented rule (function gets a trailing "_"); there are none today."""
    seen: dict[tuple[str, str], str] = {}
    for c in _runtime.schema(kind).combinators:
        key = (c.namespace, c.camel)
        assert key not in seen, (kind, c.name, seen[key])
        seen[key] = c.name
    # and no namespace name collides with a class name (namespaces are lowercase)
    assert all(not re.match(r"[A-Z]", ns) for ns in _runtime.schema(kind).names if ns)


def test_collision_rule_implementation() -> None:
    s = _runtime.Schema("api", parse_schema("fooBar#1 = FooBar;\n---functions---\nfooBar#2 = FooBar;\n"))
    assert s.names[""]["FooBar"].id == 1 and s.names[""]["FooBar_"].id == 2
