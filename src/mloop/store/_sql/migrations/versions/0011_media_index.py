"""media index: a run's images, figures, tables and histograms by (key, step), pointing at artifacts

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-30 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("step", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("meta", sa.Text(), nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_media_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "key", "step", name=op.f("pk_media")),
    )


def downgrade() -> None:
    op.drop_table("media")
