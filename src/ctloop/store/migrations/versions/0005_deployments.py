"""deployments: the desired serving state of endpoints, and their revision events

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("model_id", ID, nullable=False),
        sa.Column("routes", sa.JSON, nullable=False),
        sa.Column("shadows", sa.JSON, nullable=False),
        sa.Column("sticky_key", sa.String(200), nullable=True),
        sa.Column("log_payloads", sa.Boolean, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deployments"),
        sa.UniqueConstraint("name", name="uq_deployments_name"),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name="fk_deployments_model_id_registered_models",
            ondelete="RESTRICT",
        ),
    )
    op.create_index("ix_deployments_model_id", "deployments", ["model_id"])
    op.create_table(
        "deployment_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            nullable=False,
            autoincrement=True,
        ),
        sa.Column("deployment_id", ID, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("routes", sa.JSON, nullable=False),
        sa.Column("shadows", sa.JSON, nullable=False),
        sa.Column("sticky_key", sa.String(200), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deployment_events"),
        sa.UniqueConstraint(
            "deployment_id", "revision", name="uq_deployment_events_deployment_revision"
        ),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name="fk_deployment_events_deployment_id_deployments",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("deployment_events")
    op.drop_index("ix_deployments_model_id", table_name="deployments")
    op.drop_table("deployments")
