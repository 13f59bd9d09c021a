"""replies are stored while they generate, with a lease that marks them interrupted once it lapses

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 21:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True))
    # Partial: only the replies generating now are in it.
    op.create_index(
        'ix_messages_generating_lease',
        'messages',
        ['lease_expires_at'],
        sqlite_where=sa.text("status = 'generating'"),
        postgresql_where=sa.text("status = 'generating'"),
    )


def downgrade() -> None:
    op.drop_index('ix_messages_generating_lease', table_name='messages')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('lease_expires_at')
