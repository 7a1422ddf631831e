"""Initial schema: site_configs, users, api_keys and the tables deployment stats read.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from coderapi.database.types import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

FALSE = sa.text("false")


NOT_DELETED_SQLITE = sa.text("deleted = 0")
NOT_DELETED_PG = sa.text("deleted = false")


def upgrade() -> None:
    op.create_table(
        "site_configs",
        sa.Column("key", sa.String(256), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("username", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("rbac_roles", sa.JSON, nullable=False),
        sa.Column("login_type", sa.String(32), nullable=False, server_default="password"),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("last_seen_at", UTCDateTime, nullable=True),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=FALSE),
    )
    op.create_index(
        "idx_users_username",
        "users",
        [sa.text("lower(username)")],
        unique=True,
        sqlite_where=NOT_DELETED_SQLITE,
        postgresql_where=NOT_DELETED_PG,
    )
    op.create_index(
        "idx_users_email",
        "users",
        [sa.text("lower(email)")],
        unique=True,
        sqlite_where=NOT_DELETED_SQLITE,
        postgresql_where=NOT_DELETED_PG,
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(10), primary_key=True),
        sa.Column("hashed_secret", sa.LargeBinary, nullable=False),
        sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("last_used", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("login_type", sa.String(32), nullable=False),
        sa.Column("lifetime_seconds", sa.BigInteger, nullable=False),
        sa.Column("ip_address", sa.String(64), nullable=False, server_default="0.0.0.0"),
        sa.Column("token_name", sa.Text, nullable=False, server_default=""),
        sa.Column("scopes", sa.JSON, nullable=False),
    )
    op.create_index("idx_api_keys_user", "api_keys", ["user_id"])
    op.create_index(
        "idx_api_key_name",
        "api_keys",
        ["user_id", "token_name"],
        unique=True,
        sqlite_where=sa.text("login_type = 'token'"),
        postgresql_where=sa.text("login_type = 'token'"),
    )
    op.create_table(
        "workspaces",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("owner_id", sa.Uuid, nullable=False),
        sa.Column("template_id", sa.Uuid, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=FALSE),
    )
    op.create_table(
        "provisioner_jobs",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=True),
        sa.Column("canceled_at", UTCDateTime, nullable=True),
        sa.Column("completed_at", UTCDateTime, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_table(
        "workspace_builds",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("workspace_id", sa.Uuid, sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
        sa.Column("build_number", sa.Integer, nullable=False),
        sa.Column("transition", sa.String(16), nullable=False),
        sa.Column("job_id", sa.Uuid, sa.ForeignKey("provisioner_jobs.id", ondelete="CASCADE"), nullable=False),
        sa.UniqueConstraint("workspace_id", "build_number", name="workspace_builds_workspace_id_build_number_key"),
    )
    op.create_table(
        "workspace_agents",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("workspace_id", sa.Uuid, sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=True),
    )
    op.create_table(
        "workspace_agent_stats",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("agent_id", sa.Uuid, nullable=False),
        sa.Column("workspace_id", sa.Uuid, nullable=False),
        sa.Column("template_id", sa.Uuid, nullable=False),
        sa.Column("connection_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("rx_packets", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("rx_bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("tx_packets", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("tx_bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("connection_median_latency_ms", sa.Float, nullable=False, server_default="-1"),
        sa.Column("session_count_vscode", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("session_count_jetbrains", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("session_count_reconnecting_pty", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("session_count_ssh", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("usage", sa.Boolean, nullable=False, server_default=FALSE),
    )
    op.create_index("idx_agent_stats_created_at", "workspace_agent_stats", ["created_at"])
    op.create_index("idx_agent_stats_agent_created_at", "workspace_agent_stats", ["agent_id", "created_at"])


def downgrade() -> None:
    for table in (
        "workspace_agent_stats",
        "workspace_agents",
        "workspace_builds",
        "provisioner_jobs",
        "workspaces",
        "api_keys",
        "users",
        "site_configs",
    ):
        op.drop_table(table)
