"""imported conversations remember where they came from, so that a re-import skips them

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 00:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # In place, never a batch copy: dropping a copied `conversations` would cascade to its messages.
    op.add_column('conversations', sa.Column('import_key', sa.String(length=64), nullable=True))
    op.create_index(
        'ux_conversations_user_import_key', 'conversations', ['user_id', 'import_key'], unique=True
    )


def downgrade() -> None:
    op.drop_index('ux_conversations_user_import_key', table_name='conversations')
    # SQLite (3.35+) drops a column in place when no index or key uses it.
    op.drop_column('conversations', 'import_key')
