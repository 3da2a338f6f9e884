"""blob digests: artifact and inference-chunk rows hold a blob's digest, up to 71 characters

New blobs are named ``blake3-<64 hex>`` (71 characters); blobs from before keep their SHA-256 name
(64 hex). The columns only widen: no row changes.

SQLite cannot alter a column, so Alembic copies the table into a new one. ``inference_chunks`` ids
come from AUTOINCREMENT (an id is never reused, even after the newest chunk was deleted, so a
reader's cursor stays valid): the copy keeps that keyword and the table's place in
``sqlite_sequence``.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_COLUMNS = (("artifacts", "sha256", False), ("inference_chunks", "sha256", True))


def _alter(old: int, new: int) -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    for table, column, autoincrement in _COLUMNS:
        seq = None
        if sqlite and autoincrement:
            seq = bind.execute(
                sa.text("SELECT seq FROM sqlite_sequence WHERE name = :t"), {"t": table}
            ).scalar()
        kwargs = {"sqlite_autoincrement": True} if autoincrement else {}
        with op.batch_alter_table(table, table_kwargs=kwargs) as batch:
            batch.alter_column(
                column,
                existing_type=sa.String(length=old),
                type_=sa.String(length=new),
                existing_nullable=False,
            )
        if seq is not None:
            bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :t"), {"t": table})
            bind.execute(
                sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :s)"),
                {"t": table, "s": seq},
            )


def upgrade() -> None:
    _alter(64, 71)


def downgrade() -> None:
    _alter(71, 64)
