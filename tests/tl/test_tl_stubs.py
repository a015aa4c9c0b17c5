"""Typed TL: the committed stubs match the schema (CI check), agree with the runtime classes,
and let mypy catch a misspelled field in user code."""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from dcpool import tl

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_tl_stubs", ROOT / "tools" / "gen_tl_stubs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("kind", ["api", "mtproto"])
def test_committed_stubs_match_the_schema(kind):
    gen = _generator()
    committed = (ROOT / "dcpool" / "tl" / f"{kind}.pyi").read_text(encoding="utf-8")
    assert committed == gen.render(kind), f"run: python tools/gen_tl_stubs.py ({kind}.pyi is stale)"


def _stub_classes(kind: str) -> dict[str, ast.ClassDef]:
    tree = ast.parse((ROOT / "dcpool" / "tl" / f"{kind}.pyi").read_text(encoding="utf-8"))
    found: dict[str, ast.ClassDef] = {}

    def walk(body, prefix):
        for node in body:
            if isinstance(node, ast.ClassDef):
                path = f"{prefix}{node.name}"
                if node.bases:  # a TL class
                    found[path] = node
                else:  # a namespace
                    walk(node.body, path + ".")

    walk(tree.body, "")
    return found


def _init_params(node: ast.ClassDef) -> dict[str, object]:
    init = next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    args = init.args
    defaults = {}
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        defaults[arg.arg] = attrs.NOTHING if default is None else ast.literal_eval(default)
    return defaults


@pytest.mark.parametrize("kind, step", [("mtproto", 1), ("api", 7)])
def test_stubs_agree_with_the_runtime_classes(kind, step):
    namespace = getattr(tl, kind)
    classes = _stub_classes(kind)
    assert len(classes) > (50 if kind == "mtproto" else 2000)
    for path in sorted(classes)[::step]:
        obj = namespace
        for part in path.split("."):
            obj = getattr(obj, part)
        runtime = {f.name: f.default for f in attrs.fields(obj)}
        assert _init_params(classes[path]) == runtime, path
        is_function = any(isinstance(n, ast.FunctionDef) and n.name == "read_result" for n in classes[path].body)
        assert is_function == obj.IS_FUNCTION, path


def test_runtime_names_all_have_stubs():
    classes = _stub_classes("api")
    for ns_name in ("", "messages", "help", "upload", "auth"):
        ns = tl.api if not ns_name else getattr(tl.api, ns_name)
        for name in dir(ns):
            if name[:1].isupper():
                path = f"{ns_name}.{name}" if ns_name else name
                assert path in classes, path


USER_FILE = '''
from dcpool import tl

peer = tl.api.InputPeerSelf()
bad = tl.api.messages.SendMessage(peer=peer, mesage="x")
good = tl.api.messages.SendMessage(peer=peer, message="x", random_id=1)
wrong_type = tl.api.InputPeerUser(user_id="1", access_hash=2)
config = tl.api.help.GetConfig.read_result(b"")
reveal_type(config)
'''


def test_mypy_reports_a_misspelled_field(tmp_path):
    pytest.importorskip("mypy")
    (tmp_path / "user.py").write_text(USER_FILE)
    env = dict(os.environ, MYPYPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", os.devnull,
         "--follow-imports=silent", "--no-error-summary", "user.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("user.py")]
    text = "\n".join(lines)
    assert 'user.py:5: error: Unexpected keyword argument "mesage" for "SendMessage"' in text, out.stdout
    assert 'user.py:7: error: Argument "user_id" to "InputPeerUser" has incompatible type "str"' in text, text
    assert 'Revealed type is "dcpool.tl.api.Config"' in text, text
    assert not any(":6:" in line for line in lines), text  # the correct call is clean
