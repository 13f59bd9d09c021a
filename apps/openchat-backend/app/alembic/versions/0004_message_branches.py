"""messages form a tree (every version kept): parent_id, and the conversation's active leaf

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 00:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # SQLite cannot add a foreign key in place: batch mode copies the table (with its indexes).
    # It runs before any parent_id is set: dropping the old copy cascades to nothing.
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parent_id', sa.String(length=32), nullable=True))
        batch_op.create_foreign_key('fk_messages_parent_id', 'messages', ['parent_id'], ['id'], ondelete='CASCADE')
    op.create_index('ix_messages_conversation_parent', 'messages', ['conversation_id', 'parent_id'], unique=False)
    # In place, never a copy: dropping a copied `conversations` would cascade to its messages.
    op.add_column('conversations', sa.Column('active_leaf_id', sa.String(length=32), nullable=True))
    # Existing conversations are one path: each message follows the one before it (the greatest
    # lower position, so a gap in positions cannot cut a conversation), the last one is shown.
    op.execute(
        """
        UPDATE messages SET parent_id = (
            SELECT earlier.id FROM messages AS earlier
            WHERE earlier.conversation_id = messages.conversation_id AND earlier.position < messages.position
            ORDER BY earlier.position DESC, earlier.created_at DESC, earlier.id DESC
            LIMIT 1
        )
        """
    )
    op.execute(
        """
        UPDATE conversations SET active_leaf_id = (
            SELECT last.id FROM messages AS last
            WHERE last.conversation_id = conversations.id
            ORDER BY last.position DESC, last.created_at DESC, last.id DESC
            LIMIT 1
        )
        """
    )


def downgrade() -> None:
    # Before 0004 a conversation is one list of messages: only the path shown is kept, the other
    # versions are deleted (they cannot be represented).
    op.execute(
        """
        WITH RECURSIVE shown(id, parent_id) AS (
            SELECT m.id, m.parent_id FROM messages AS m JOIN conversations AS c ON m.id = c.active_leaf_id
            UNION ALL
            SELECT m.id, m.parent_id FROM messages AS m JOIN shown ON m.id = shown.parent_id
        )
        DELETE FROM messages WHERE id NOT IN (SELECT id FROM shown)
        """
    )
    # In place (SQLite 3.35+): batch mode would copy and drop `conversations`, and dropping it
    # deletes every message through their ON DELETE CASCADE.
    op.drop_column('conversations', 'active_leaf_id')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_conversation_parent')
        batch_op.drop_column('parent_id')
