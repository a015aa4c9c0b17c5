import subprocess
import sys

import pytest

from dcpool.bridge.cli import load_config
from dcpool.cli import build_parser


def parse(*argv):
    return build_parser().parse_args(["bridge", *argv])


def test_toml_and_flags(tmp_path):
    path = tmp_path / "bridge.toml"
    path.write_text('''
outbox = "x.db"
port = 9999
api_token = "from-file"
lease_ttl = 7
[[webhooks]]
url = "http://127.0.0.1:1/h"
name = "main"
secret_token = "abc_DEF-1"
allowed_updates = ["message"]
max_connections = 3
[[accounts]]
name = "acc1"
session = "acc1.session"
api_id = 1
api_hash = "h"
''')
    config, accounts = load_config(parse("--config", str(path), "--port", "0", "--webhook", "http://127.0.0.1:2/x"))
    assert config.host == "127.0.0.1"  # loopback unless told otherwise
    assert (config.outbox, config.port, config.api_token, config.lease_ttl) == ("x.db", 0, "from-file", 7)
    assert [h.name for h in config.webhooks] == ["main", "cli"]
    assert config.webhooks[0].allowed_updates == frozenset({"message"}) and config.webhooks[0].max_connections == 3
    assert config.accounts == ("acc1",) and accounts[0]["session"] == "acc1.session"


def test_bad_webhook_config_is_refused(tmp_path):
    path = tmp_path / "bridge.toml"
    path.write_text('[[webhooks]]\nurl = "http://x"\nsecret_token = "not ok!"\n')
    with pytest.raises(ValueError):
        load_config(parse("--config", str(path)))


def test_help_lists_bridge():
    out = subprocess.run([sys.executable, "-m", "dcpool.cli", "bridge", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--emulator" in out.stdout and "--webhook" in out.stdout
