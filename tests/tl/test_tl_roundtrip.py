"""Round-trip property tests over EVERY constructor and function of the layer-228 API schema, the
core schema and the layer-158-only declarations: obj -> bytes -> tl.loads -> equal object, same
bytes.  Strategies come from the schema (tl_strategies.py)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from dcpool import tl
from dcpool.tl import _runtime

from tl_strategies import class_strategy

# tdlib's invokeWith*Prefix helpers reuse the id of the real wrapper (see dcpool.tl docstring):
# their bytes decode as the wrapper, so they are checked separately below.
PREFIX_HELPERS = {
    "invokeWithBusinessConnectionPrefix",
    "invokeWithGooglePlayIntegrityPrefix",
    "invokeWithApnsSecretPrefix",
    "invokeWithReCaptchaPrefix",
}


def _cases() -> list[tuple[str, str]]:
    cases = []
    for kind in ("api", "mtproto", "api158"):
        s = _runtime.schema(kind)
        api_ids = _runtime.schema("api").by_id
        for c in s.combinators:
            if c.id is None or c.name in PREFIX_HELPERS:
                continue
            if kind != "api" and c.id in api_ids:
                continue  # shares the layer-228 class, already covered
            cases.append((kind, c.name))
    return cases


CASES = _cases()

FAST = settings(
    max_examples=2,
    deadline=None,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
)

CORE = settings(FAST, max_examples=10)  # the core schema is small and on every hot path


def test_every_declaration_is_covered():
    names = {name for _, name in CASES}
    assert len(CASES) > 2500
    for must in ("user", "config", "upload.file", "help.getConfig", "invokeWithLayer", "resPQ",
                 "msg_container", "rpc_result", "message", "gzip_packed", "future_salts"):
        assert must in names


@pytest.mark.parametrize(("kind", "name"), CASES, ids=[f"{k}:{n}" for k, n in CASES])
def test_roundtrip(kind: str, name: str) -> None:
    cls = _runtime.class_for(kind, _runtime.schema(kind).by_name[name])

    # A fresh @given per case: one @given function parametrized ~2700 times trips a Hypothesis
    # slowdown (settings chain) after ~950 runs.
    @(CORE if kind == "mtproto" else FAST)
    @given(class_strategy(cls))
    def check(obj: object) -> None:
        _check_roundtrip(cls, name, obj)

    check()


def _check_roundtrip(cls: type, name: str, obj: object) -> None:
    raw = obj.to_bytes()
    assert bytes(obj) == raw
    assert len(raw) % 4 == 0
    assert int.from_bytes(raw[:4], "little") == cls.CONSTRUCTOR_ID
    back = tl.loads(raw)
    if name == "boolTrue":
        assert back is True
    elif name == "boolFalse":
        assert back is False
    elif name == "gzip_packed":
        # tl.loads unpacks gzip_packed transparently.
        import gzip

        assert back.to_bytes() == gzip.decompress(obj.packed_data)
    else:
        assert type(back) is cls
        assert back == obj
        assert back.to_bytes() == raw


@pytest.mark.parametrize("name", sorted(PREFIX_HELPERS))
def test_prefix_helpers_share_the_wrapper_id(name: str) -> None:
    cls = _runtime.class_for("api", _runtime.schema("api").by_name[name])
    real = _runtime.schema("api").by_id[cls.CONSTRUCTOR_ID]
    assert real.name == name.removesuffix("Prefix")
    assert real.crc32() == real.id and cls._tl_combinator.crc32() != cls.CONSTRUCTOR_ID
    # The prefix is the wrapper without its query: wrapper bytes = prefix bytes + query.
    kwargs = {f.pyname: "x" for f in cls._tl_params}
    wrapper = _runtime.class_for("api", real)(**kwargs, query=tl.api.help.GetConfig())
    assert wrapper.to_bytes() == cls(**kwargs).to_bytes() + tl.api.help.GetConfig().to_bytes()
    assert tl.loads(wrapper.to_bytes()) == wrapper
