"""face_landmarks: each corpus face's dense landmarks (float16, relative to its box), stored
at ingest and filled for older libraries by ``lookalike landmarks backfill``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'face_landmarks',
        sa.Column('face_id', sa.Integer(), nullable=False),
        sa.Column('model', sa.String(length=64), nullable=False),
        sa.Column('points', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['face_id'], ['faces.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('face_id'),
    )


def downgrade() -> None:
    op.drop_table('face_landmarks')
