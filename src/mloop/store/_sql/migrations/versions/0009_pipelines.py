"""pipelines: a pipeline (name, code ref), its runs, and one row per done step of a run

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-24 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipelines",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("code_ref", sa.String(length=1000), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_pipelines")),
    )
    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("pipeline", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("code_ref", sa.String(length=1000), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("end_ms", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("resumed_from", sa.String(length=32), nullable=True),
        sa.Column("tracking_run_id", sa.String(length=32), nullable=True),
        sa.Column("actor", sa.String(length=255), nullable=True),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline"], ["pipelines.name"], name=op.f("fk_pipeline_runs_pipeline_pipelines")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_runs")),
    )
    op.create_index(
        "ix_pipeline_runs_pipeline_start", "pipeline_runs", ["pipeline", "start_ms"], unique=False
    )
    op.create_table(
        "step_runs",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("step", sa.String(length=1000), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("cache_key", sa.String(length=64), nullable=True),
        sa.Column("cache_hit", sa.Boolean(), nullable=False),
        sa.Column("end_ms", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["pipeline_runs.id"], name=op.f("fk_step_runs_run_id_pipeline_runs")
        ),
        sa.PrimaryKeyConstraint("run_id", "name", name=op.f("pk_step_runs")),
    )
    op.create_index("ix_step_runs_cache_key", "step_runs", ["cache_key"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_step_runs_cache_key", table_name="step_runs")
    op.drop_table("step_runs")
    op.drop_index("ix_pipeline_runs_pipeline_start", table_name="pipeline_runs")
    op.drop_table("pipeline_runs")
    op.drop_table("pipelines")
