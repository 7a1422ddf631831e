"""The schema, migrations and site_configs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import pathlib
import re
import threading
import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import inspect

from coderapi import apikey, testing
from coderapi.database import Store
from coderapi.database.migrate import current
from coderapi.database.rows import TableRow
from coderapi.database.tables import metadata, site_configs, users
from coderapi.database.users import now
from tests import services
from tests.conftest import MakeToken, MakeUser

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_migrations_create_every_table_with_its_columns(store: Store) -> None:
    insp = inspect(store.engine)
    assert current(store.engine) is not None
    for table in metadata.sorted_tables:
        columns = {c["name"] for c in insp.get_columns(table.name)}
        assert columns == {c.name for c in table.columns}, table.name


def test_migrate_is_idempotent(store: Store) -> None:
    before = current(store.engine)
    store.migrate()
    assert current(store.engine) == before


def test_site_config_round_trip(store: Store) -> None:
    assert store.get_site_config("k") is None
    store.upsert_site_config("k", "one")
    store.upsert_site_config("k", "two")
    assert store.get_site_config("k") == "two"


def test_deployment_id_is_a_lowercase_uuid4_created_once(store: Store) -> None:
    first = store.ensure_deployment_id()
    assert UUID4.match(first)
    assert store.ensure_deployment_id() == first


def test_ensure_site_configs_keeps_the_first_set_whole(store: Store) -> None:
    assert store.ensure_site_configs({"a": "1", "b": "1"}) == {"a": "1", "b": "1"}
    assert store.ensure_site_configs({"a": "2", "b": "2"}) == {"a": "1", "b": "1"}


def test_deployment_id_survives_reopening(tmp_path: pathlib.Path) -> None:
    url = "sqlite:///" + str(tmp_path / "c.db")
    s1 = Store(url)
    s1.migrate()
    first = s1.ensure_deployment_id()
    s1.close()
    s2 = Store(url)
    s2.migrate()
    assert s2.ensure_deployment_id() == first
    s2.close()


@pytest.mark.postgres
def test_nodes_starting_together_on_postgres_agree_on_the_deployment_id() -> None:
    """Eight stores (as eight nodes would) migrate and create the id at the same moment on a new database."""
    services.require_postgres()
    name = testing.unique_name("coderapi_race")
    url = testing.create_pg_database(name)
    try:
        stores = [Store(url) for _ in range(8)]
        barrier = threading.Barrier(len(stores))
        ids: list[str] = []
        errors: list[BaseException] = []

        def boot(s: Store) -> None:
            try:
                barrier.wait()
                s.migrate()
                ids.append(s.ensure_deployment_id())
            except BaseException as err:
                errors.append(err)

        threads = [threading.Thread(target=boot, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        assert len(ids) == len(stores)
        assert len(set(ids)) == 1
        uuid.UUID(ids[0])
        for s in stores:
            s.close()
    finally:
        testing.drop_pg_database(name)


def test_key_lookup_rows_map_onto_the_dataclasses_by_position() -> None:
    """The hot key lookup builds APIKey and User from row positions: table order must be field order."""
    from dataclasses import fields

    from coderapi.database.apikeys import APIKey
    from coderapi.database.tables import api_keys, users
    from coderapi.database.users import User

    assert [f.name for f in fields(APIKey)] == [c.name for c in api_keys.c]
    assert [f.name for f in fields(User)] == [c.name for c in users.c]


def test_the_token_lookup_reads_what_the_sqlalchemy_queries_read(
    store: Store, make_user: MakeUser, make_token: MakeToken
) -> None:
    """The lookup's driver rows (sqlite3's values, libpq's text) decode to the very objects
    SQLAlchemy's rows give, a NULL column included (a user never seen)."""
    user = make_user("decoded", ("owner", "auditor"))
    kid = apikey.split(make_token(user, name="decoded"))[0]
    assert user.last_seen_at is None
    assert store.get_api_key_with_user(kid) == (store.get_api_key_by_id(kid), store.get_user_by_id(user.id))
    at = now()
    store.update_api_key_usage(kid, last_used=at, expires_at=at + dt.timedelta(hours=1), ip_address="10.0.0.1")
    found = store.get_api_key_with_user(kid)
    assert found is not None and found[1].last_seen_at == at and found[0].ip_address == "10.0.0.1"
    assert found == (store.get_api_key_by_id(kid), store.get_user_by_id(user.id))


def test_a_row_decoder_refuses_a_dataclass_that_is_not_its_table_in_order() -> None:
    @dataclass(frozen=True)
    class SiteConfig:
        key: str
        value: str

    @dataclass(frozen=True)
    class Swapped:
        value: str
        key: str

    assert TableRow(SiteConfig, site_configs).decode(("k", "v")) == SiteConfig("k", "v")
    with pytest.raises(TypeError, match="not site_configs's columns in order"):
        TableRow(Swapped, site_configs)
    with pytest.raises(TypeError, match="not users's columns in order"):
        TableRow(SiteConfig, users)
