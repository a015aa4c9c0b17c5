import itertools

import pytest

from dcpool.bridge.pgserver import PgServer, PgUnavailable

_names = itertools.count()


@pytest.fixture(scope="session")
def pg_server():
    try:
        server = PgServer().start()
    except PgUnavailable as exc:
        pytest.skip(f"PostgreSQL cannot be started here: {exc}")
    yield server
    server.stop()


@pytest.fixture
def pg_dsn(pg_server):
    return pg_server.fresh_database(f"t{next(_names)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def outbox_target(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "outbox.db")
    return request.getfixturevalue("pg_dsn")
