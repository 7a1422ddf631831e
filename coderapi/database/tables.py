"""The schema, with coderd's table and column names (SQLAlchemy Core).

The Alembic migrations in `migrations/versions` create exactly these tables; a test checks that the
migrated database and this metadata agree.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)

from coderapi.database.types import UTCDateTime

metadata = MetaData()

site_configs = Table(
    "site_configs",
    metadata,
    Column("key", String(256), primary_key=True),
    Column("value", Text, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("email", Text, nullable=False),
    Column("username", Text, nullable=False),
    Column("status", String(16), nullable=False, server_default="active"),
    Column("rbac_roles", JSON, nullable=False),
    Column("login_type", String(32), nullable=False, server_default="password"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=True),
    Column("deleted", Boolean, nullable=False, server_default=text("false")),
)
# Usernames and emails are unique case-insensitively among users that are not deleted (coderd's
# idx_users_username / idx_users_email).
Index(
    "idx_users_username",
    func.lower(users.c.username),
    unique=True,
    sqlite_where=users.c.deleted == text("0"),
    postgresql_where=users.c.deleted == text("false"),
)
Index(
    "idx_users_email",
    func.lower(users.c.email),
    unique=True,
    sqlite_where=users.c.deleted == text("0"),
    postgresql_where=users.c.deleted == text("false"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(10), primary_key=True),
    Column("hashed_secret", LargeBinary, nullable=False),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("last_used", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("login_type", String(32), nullable=False),
    Column("lifetime_seconds", BigInteger, nullable=False),
    Column("ip_address", String(64), nullable=False, server_default="0.0.0.0"),
    Column("token_name", Text, nullable=False, server_default=""),
    Column("scopes", JSON, nullable=False),
)
Index("idx_api_keys_user", api_keys.c.user_id)
# A user's named tokens have distinct names (coderd's idx_api_key_name).
Index(
    "idx_api_key_name",
    api_keys.c.user_id,
    api_keys.c.token_name,
    unique=True,
    sqlite_where=api_keys.c.login_type == text("'token'"),
    postgresql_where=api_keys.c.login_type == text("'token'"),
)

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("owner_id", Uuid, nullable=False),
    Column("template_id", Uuid, nullable=False),
    Column("name", Text, nullable=False),
    Column("deleted", Boolean, nullable=False, server_default=text("false")),
)

provisioner_jobs = Table(
    "provisioner_jobs",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("canceled_at", UTCDateTime, nullable=True),
    Column("completed_at", UTCDateTime, nullable=True),
    Column("error", Text, nullable=True),
)

workspace_builds = Table(
    "workspace_builds",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("workspace_id", Uuid, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("build_number", Integer, nullable=False),
    Column("transition", String(16), nullable=False),
    Column("job_id", Uuid, ForeignKey("provisioner_jobs.id", ondelete="CASCADE"), nullable=False),
    UniqueConstraint("workspace_id", "build_number", name="workspace_builds_workspace_id_build_number_key"),
)

workspace_agents = Table(
    "workspace_agents",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("name", Text, nullable=False),
    Column("workspace_id", Uuid, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=True),
)

workspace_agent_stats = Table(
    "workspace_agent_stats",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("user_id", Uuid, nullable=False),
    Column("agent_id", Uuid, nullable=False),
    Column("workspace_id", Uuid, nullable=False),
    Column("template_id", Uuid, nullable=False),
    Column("connection_count", BigInteger, nullable=False, server_default="0"),
    Column("rx_packets", BigInteger, nullable=False, server_default="0"),
    Column("rx_bytes", BigInteger, nullable=False, server_default="0"),
    Column("tx_packets", BigInteger, nullable=False, server_default="0"),
    Column("tx_bytes", BigInteger, nullable=False, server_default="0"),
    Column("connection_median_latency_ms", Float, nullable=False, server_default="-1"),
    Column("session_count_vscode", BigInteger, nullable=False, server_default="0"),
    Column("session_count_jetbrains", BigInteger, nullable=False, server_default="0"),
    Column("session_count_reconnecting_pty", BigInteger, nullable=False, server_default="0"),
    Column("session_count_ssh", BigInteger, nullable=False, server_default="0"),
    Column("usage", Boolean, nullable=False, server_default=text("false")),
)
Index("idx_agent_stats_created_at", workspace_agent_stats.c.created_at)
Index("idx_agent_stats_agent_created_at", workspace_agent_stats.c.agent_id, workspace_agent_stats.c.created_at)
