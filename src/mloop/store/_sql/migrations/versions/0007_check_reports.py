"""check reports: a gate's report on a model version, its body in the wire codec's JSON

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "check_reports",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("policy_hash", sa.String(length=64), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=True),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model", "version"],
            ["model_versions.name", "model_versions.version"],
            name=op.f("fk_check_reports_model_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_check_reports")),
    )
    op.create_index(
        "ix_check_reports_model_version",
        "check_reports",
        ["model", "version", "created_ms"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_check_reports_model_version", table_name="check_reports")
    op.drop_table("check_reports")
