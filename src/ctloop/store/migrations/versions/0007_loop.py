"""loop: the controller's policy, state and events per deployment

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-19
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ID = sa.String(32)


def _deployment_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["deployment_id"],
        ["deployments.id"],
        name=f"fk_{table}_deployment_id_deployments",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "loop_policies",
        sa.Column("deployment_id", ID, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("policy", sa.JSON, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=True),
        sa.PrimaryKeyConstraint("deployment_id", name="pk_loop_policies"),
        _deployment_fk("loop_policies"),
    )
    op.create_table(
        "loop_states",
        sa.Column("deployment_id", ID, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("step", sa.Integer, nullable=True),
        sa.Column("candidate_version", sa.Integer, nullable=True),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("lease_owner", sa.String(256), nullable=True),
        sa.Column("lease_expires_at", sa.BigInteger, nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("deployment_id", name="pk_loop_states"),
        _deployment_fk("loop_states"),
    )
    op.create_table(
        "loop_events",
        sa.Column("id", ID, nullable=False),
        sa.Column("deployment_id", ID, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("from_state", sa.String(16), nullable=False),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("links", sa.JSON, nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_loop_events"),
        sa.UniqueConstraint("deployment_id", "seq", name="uq_loop_events_deployment_seq"),
        _deployment_fk("loop_events"),
    )
    op.create_index(
        "ix_loop_events_deployment_created", "loop_events", ["deployment_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_loop_events_deployment_created", table_name="loop_events")
    op.drop_table("loop_events")
    op.drop_table("loop_states")
    op.drop_table("loop_policies")
