"""vector_outbox: what a Milvus vector store has yet to receive (SQL commits first).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'vector_outbox',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('space_id', sa.Integer(), nullable=False),
        sa.Column('face_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['space_id'], ['indexes.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_vector_outbox_space', 'vector_outbox', ['space_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_vector_outbox_space', table_name='vector_outbox')
    op.drop_table('vector_outbox')
