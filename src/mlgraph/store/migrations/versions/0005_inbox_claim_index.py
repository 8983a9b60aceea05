"""Inbox claims by an index range scan: due rows in (not_before, id) order.

``Inbox.claim`` grouped every pending row by subject; it now walks due rows in
index order and stops once it has its subjects. The new index replaces
``ix_inbox_due`` (its prefix).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_inbox_claim", "inbox", ["status", "not_before", "id"])
    op.drop_index("ix_inbox_due", table_name="inbox")


def downgrade() -> None:
    op.create_index("ix_inbox_due", "inbox", ["status", "not_before"])
    op.drop_index("ix_inbox_claim", table_name="inbox")
