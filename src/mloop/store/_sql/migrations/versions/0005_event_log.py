"""the event log and its followers' cursors

One ordered log of everything that happens (``events``) and the durable positions of the consumers
that follow it (``event_cursors``). The registry's audit trail is copied into the log under the same
ids, so webhook cursors (registry event ids until now) keep their meaning; they move from the
``webhooks.cursor`` column to ``event_cursors`` as ``webhook-<id>``. Monitor results and alerts
written before this revision stay in their own tables and are not replayed into the log.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 22:30:00
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _loads(v: str | None) -> object:
    return None if v is None else json.loads(v)


def upgrade() -> None:
    events = op.create_table(
        "events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=600), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_type", "events", ["type", "id"], unique=False)
    op.create_index("ix_events_subject", "events", ["subject", "id"], unique=False)
    cursors = op.create_table(
        "event_cursors",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_event_cursors")),
    )

    bind = op.get_bind()
    old = sa.table(
        "registry_events",
        *(
            sa.column(c)
            for c in (
                "id",
                "ts_ms",
                "type",
                "model",
                "version",
                "alias",
                "actor",
                "before",
                "after",
                "reason",
                "report_id",
            )
        ),
    )
    rows = bind.execute(sa.select(old).order_by(old.c.id)).all()
    if rows:
        op.bulk_insert(
            events,
            [
                {
                    "id": r.id,
                    "ts_ms": r.ts_ms,
                    "type": r.type,
                    "subject": f"models/{r.model}",
                    "actor": r.actor,
                    "payload": json.dumps(
                        {
                            "model": r.model,
                            "version": r.version,
                            "alias": r.alias,
                            "before": _loads(r.before),
                            "after": _loads(r.after),
                            "reason": r.reason,
                            "report_id": r.report_id,
                        }
                    ),
                }
                for r in rows
            ],
        )
        if bind.dialect.name == "postgresql":
            bind.execute(
                sa.text("SELECT setval(pg_get_serial_sequence('events', 'id'), :n)"),
                {"n": rows[-1].id},
            )
    hooks = sa.table("webhooks", sa.column("id"), sa.column("cursor"), sa.column("created_ms"))
    hook_rows = bind.execute(sa.select(hooks)).all()
    if hook_rows:
        op.bulk_insert(
            cursors,
            [
                {"name": f"webhook-{h.id}", "position": h.cursor, "updated_ms": h.created_ms}
                for h in hook_rows
            ],
        )
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_column("cursor")


def downgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cursor", sa.Integer(), server_default="0", nullable=False))
    bind = op.get_bind()
    hooks = sa.table("webhooks", sa.column("id"), sa.column("cursor"))
    cursors = sa.table("event_cursors", sa.column("name"), sa.column("position"))
    for name, position in bind.execute(sa.select(cursors.c.name, cursors.c.position)).all():
        if name.startswith("webhook-") and name[len("webhook-") :].isdigit():
            bind.execute(
                hooks.update()
                .where(hooks.c.id == int(name[len("webhook-") :]))
                .values(cursor=position)
            )
    op.drop_table("event_cursors")
    op.drop_index("ix_events_subject", table_name="events")
    op.drop_index("ix_events_type", table_name="events")
    op.drop_table("events")
