"""monitors: one monitor per deployment, its reports and its alerts

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ID = sa.String(32)
FLOAT = sa.Float(precision=53)


def _deployment_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["deployment_id"],
        ["deployments.id"],
        name=f"fk_{table}_deployment_id_deployments",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "monitors",
        sa.Column("id", ID, nullable=False),
        sa.Column("deployment_id", ID, nullable=False),
        sa.Column("reference", sa.String(300), nullable=False),
        sa.Column("reference_given", sa.String(300), nullable=False),
        sa.Column("features", sa.JSON, nullable=True),
        sa.Column("window", sa.String(64), nullable=False),
        sa.Column("drift_share", FLOAT, nullable=False),
        sa.Column("rules", sa.JSON, nullable=False),
        sa.Column("sinks", sa.JSON, nullable=False),
        sa.Column("cooldown_seconds", FLOAT, nullable=False),
        sa.Column("profile", sa.JSON, nullable=False),
        sa.Column("estimation", sa.JSON, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_monitors"),
        sa.UniqueConstraint("deployment_id", name="uq_monitors_deployment_id"),
        _deployment_fk("monitors"),
    )
    op.create_table(
        "monitor_reports",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("deployment_id", ID, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("window_start", sa.BigInteger, nullable=True),
        sa.Column("window_end", sa.BigInteger, nullable=True),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("drifted", sa.Boolean, nullable=False),
        sa.Column("drift_share", FLOAT, nullable=True),
        sa.Column("drifted_features", sa.JSON, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("html_uri", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_reports"),
        _deployment_fk("monitor_reports"),
    )
    op.create_index(
        "ix_monitor_reports_deployment_created",
        "monitor_reports",
        ["deployment_id", "created_at"],
    )
    op.create_table(
        "monitor_alerts",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("deployment_id", ID, nullable=False),
        sa.Column("report_id", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("value", FLOAT, nullable=True),
        sa.Column("threshold", FLOAT, nullable=True),
        sa.Column("dedup_key", sa.String(512), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_alerts"),
        _deployment_fk("monitor_alerts"),
    )
    op.create_index(
        "ix_monitor_alerts_deployment_created",
        "monitor_alerts",
        ["deployment_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_monitor_alerts_deployment_created", table_name="monitor_alerts")
    op.drop_table("monitor_alerts")
    op.drop_index("ix_monitor_reports_deployment_created", table_name="monitor_reports")
    op.drop_table("monitor_reports")
    op.drop_table("monitors")
