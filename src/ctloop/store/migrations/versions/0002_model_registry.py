"""model registry: registered models, versions, version tags, aliases, alias events

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_registered_models"),
        sa.UniqueConstraint("name", name="uq_registered_models_name"),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", ID, nullable=False),
        sa.Column("model_id", ID, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("run_id", ID, nullable=False),
        sa.Column("artifact_path", sa.String(1024), nullable=False),
        sa.Column("package_digest", sa.String(64), nullable=False),
        sa.Column("flavor", sa.String(32), nullable=False),
        sa.Column("signature", sa.JSON, nullable=True),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
        sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name="fk_model_versions_model_id_registered_models",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_model_versions_run_id_runs", ondelete="RESTRICT"
        ),
    )
    op.create_index("ix_model_versions_run_id", "model_versions", ["run_id"])
    op.create_index("ix_model_versions_package_digest", "model_versions", ["package_digest"])
    op.create_table(
        "model_version_tags",
        sa.Column("version_id", ID, nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("version_id", "key", name="pk_model_version_tags"),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name="fk_model_version_tags_version_id_model_versions",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "model_aliases",
        sa.Column("model_id", ID, nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("version_id", ID, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("model_id", "alias", name="pk_model_aliases"),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name="fk_model_aliases_model_id_registered_models",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name="fk_model_aliases_version_id_model_versions",
            ondelete="RESTRICT",
        ),
    )
    op.create_index("ix_model_aliases_version_id", "model_aliases", ["version_id"])
    op.create_table(
        "alias_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            nullable=False,
            autoincrement=True,
        ),
        sa.Column("model_id", ID, nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_version", sa.Integer, nullable=True),
        sa.Column("to_version", sa.Integer, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alias_events"),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name="fk_alias_events_model_id_registered_models",
            ondelete="RESTRICT",
        ),
    )
    op.create_index("ix_alias_events_model_alias", "alias_events", ["model_id", "alias", "id"])


def downgrade() -> None:
    for name in (
        "alias_events",
        "model_aliases",
        "model_version_tags",
        "model_versions",
        "registered_models",
    ):
        op.drop_table(name)
