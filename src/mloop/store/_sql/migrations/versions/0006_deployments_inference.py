"""deployments, their revisions, the inference log's index and delayed labels

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _id() -> sa.Column[int]:
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        autoincrement=True,
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=600), nullable=False),
        sa.Column("canary", sa.String(length=600), nullable=True),
        sa.Column("canary_percent", sa.Double(), nullable=False),
        sa.Column("shadow", sa.String(length=600), nullable=True),
        sa.Column("sticky_key", sa.String(length=255), nullable=True),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column("updated_by", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_deployments")),
    )
    op.create_table(
        "deployment_revisions",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("revision", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["name"], ["deployments.name"], name=op.f("fk_deployment_revisions_name_deployments")
        ),
        sa.PrimaryKeyConstraint("name", "revision", name=op.f("pk_deployment_revisions")),
    )
    op.create_table(
        "inference_chunks",
        _id(),
        sa.Column("deployment", sa.String(length=500), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("n_rows", sa.BigInteger(), nullable=False),
        sa.Column("first_ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("model_versions", sa.Text(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inference_chunks")),
        sa.UniqueConstraint(
            "deployment", "sha256", name=op.f("uq_inference_chunks_deployment_sha256")
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_inference_chunks_deployment", "inference_chunks", ["deployment", "id"], unique=False
    )
    op.create_table(
        "inference_labels",
        _id(),
        sa.Column("deployment", sa.String(length=500), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inference_labels")),
        sa.UniqueConstraint(
            "deployment", "request_id", name=op.f("uq_inference_labels_deployment_request_id")
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_inference_labels_deployment", "inference_labels", ["deployment", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_inference_labels_deployment", table_name="inference_labels")
    op.drop_table("inference_labels")
    op.drop_index("ix_inference_chunks_deployment", table_name="inference_chunks")
    op.drop_table("inference_chunks")
    op.drop_table("deployment_revisions")
    op.drop_table("deployments")
