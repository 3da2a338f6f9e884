"""trigger firings: one row per firing of a trigger, unique by its idempotency key, with a lease

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-28 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trigger_firings",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("trigger", sa.String(length=200), nullable=False),
        sa.Column("pipeline", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("lease_until_ms", sa.BigInteger(), nullable=False),
        sa.Column("resumed_from", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=255), nullable=True),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_trigger_firings")),
    )
    op.create_index(
        "ix_trigger_firings_trigger", "trigger_firings", ["trigger", "event_id"], unique=False
    )
    op.create_index("ix_trigger_firings_status", "trigger_firings", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_trigger_firings_status", table_name="trigger_firings")
    op.drop_index("ix_trigger_firings_trigger", table_name="trigger_firings")
    op.drop_table("trigger_firings")
