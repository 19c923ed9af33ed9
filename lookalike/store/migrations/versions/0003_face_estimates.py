"""Estimated age / gender / emotion per corpus face (ingest --analyze).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'face_estimates',
        sa.Column('face_id', sa.Integer(), nullable=False),
        sa.Column('age', sa.Float(), nullable=False),
        sa.Column('woman', sa.Float(), nullable=False),
        sa.Column('emotion', sa.Text(), nullable=False),
        sa.Column('emotions', sa.Text(), nullable=False),
        sa.Column('model', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['face_id'], ['faces.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('face_id'),
    )


def downgrade() -> None:
    op.drop_table('face_estimates')
