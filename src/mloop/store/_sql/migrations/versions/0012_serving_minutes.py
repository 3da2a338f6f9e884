"""serving minutes: per deployment, replica and minute, requests, errors and a latency histogram

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "serving_minutes",
        sa.Column("deployment", sa.String(length=128), nullable=False),
        sa.Column("minute_ms", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("replica", sa.String(length=128), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("latency_sum_ms", sa.Float(), nullable=False),
        sa.Column("latency_max_ms", sa.Float(), nullable=False),
        sa.Column("latency_counts", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint(
            "deployment", "minute_ms", "replica", name=op.f("pk_serving_minutes")
        ),
    )


def downgrade() -> None:
    op.drop_table("serving_minutes")
