"""pipelines: pipeline runs, step runs, and validation suites of dataset versions

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("pipeline", sa.String(256), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("executor", sa.String(16), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("graph", sa.JSON, nullable=False),
        sa.Column("start_time", sa.BigInteger, nullable=False),
        sa.Column("end_time", sa.BigInteger, nullable=True),
        sa.Column("user", sa.String(256), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_pipeline_runs"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_pipeline_runs_run_id_runs", ondelete="RESTRICT"
        ),
    )
    op.create_index("ix_pipeline_runs_pipeline_start", "pipeline_runs", ["pipeline", "start_time"])
    op.create_table(
        "step_runs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("pipeline_run_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("step", sa.String(512), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cache_key", sa.String(64), nullable=True),
        sa.Column("cache_hit", sa.Boolean, nullable=False),
        sa.Column("cached_from", sa.String(32), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("outputs", sa.JSON, nullable=False),
        sa.Column("upstream", sa.JSON, nullable=False),
        sa.Column("start_time", sa.BigInteger, nullable=True),
        sa.Column("end_time", sa.BigInteger, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("logs", sa.JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_step_runs"),
        sa.ForeignKeyConstraint(
            ["pipeline_run_id"],
            ["pipeline_runs.id"],
            name="fk_step_runs_pipeline_run_id_pipeline_runs",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("pipeline_run_id", "name", name="uq_step_runs_pipeline_run_name"),
    )
    op.create_index("ix_step_runs_cache_key", "step_runs", ["cache_key", "status"])
    op.create_table(
        "dataset_suites",
        sa.Column("dataset_version_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=True),
        sa.PrimaryKeyConstraint("dataset_version_id", "name", name="pk_dataset_suites"),
        sa.ForeignKeyConstraint(
            ["dataset_version_id"],
            ["dataset_versions.id"],
            name="fk_dataset_suites_dataset_version_id_dataset_versions",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("dataset_suites")
    op.drop_index("ix_step_runs_cache_key", table_name="step_runs")
    op.drop_table("step_runs")
    op.drop_index("ix_pipeline_runs_pipeline_start", table_name="pipeline_runs")
    op.drop_table("pipeline_runs")
