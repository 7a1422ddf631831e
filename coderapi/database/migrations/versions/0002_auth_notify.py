"""Notify channel `coderapi_auth` of every change to what the token check reads (PostgreSQL only).

Each worker's token cache (coderapi/database/keycache.py) drops what a notification names:
`k:<key id>` for an api_keys row inserted, updated or deleted (the old id too if it changed),
`u:<user id>` for a users row, `*` for a TRUNCATE of either table. Triggers, so every writer is
covered (another node, the CLI, psql). SQLite needs none: its lookup proves freshness with
`PRAGMA data_version`.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE FUNCTION coderapi_notify_api_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('coderapi_auth', '*');
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('coderapi_auth', 'k:' || OLD.id);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('coderapi_auth', 'k:' || NEW.id);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION coderapi_notify_users() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('coderapi_auth', '*');
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('coderapi_auth', 'u:' || OLD.id::text);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('coderapi_auth', 'u:' || NEW.id::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER coderapi_notify_api_keys AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION coderapi_notify_api_keys();
CREATE TRIGGER coderapi_notify_api_keys_truncate AFTER TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION coderapi_notify_api_keys();
CREATE TRIGGER coderapi_notify_users AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION coderapi_notify_users();
CREATE TRIGGER coderapi_notify_users_truncate AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION coderapi_notify_users();
"""

DOWNGRADE = """
DROP TRIGGER IF EXISTS coderapi_notify_users_truncate ON users;
DROP TRIGGER IF EXISTS coderapi_notify_users ON users;
DROP TRIGGER IF EXISTS coderapi_notify_api_keys_truncate ON api_keys;
DROP TRIGGER IF EXISTS coderapi_notify_api_keys ON api_keys;
DROP FUNCTION IF EXISTS coderapi_notify_users();
DROP FUNCTION IF EXISTS coderapi_notify_api_keys();
"""


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(UPGRADE)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(DOWNGRADE)
