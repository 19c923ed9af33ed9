"""Work queue for many ingest workers (PostgreSQL) and stored PCA reductions (4096-d models).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'ingest_queue',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('space_id', sa.Integer(), sa.ForeignKey('indexes.id', ondelete='CASCADE'), nullable=False),
        sa.Column('run', sa.String(32), nullable=False),
        sa.Column('path', sa.Text(), nullable=False),
        sa.Column('person', sa.String(300)),
        sa.Column('sha256', sa.String(64), nullable=False),
        sa.Column('size_bytes', sa.Integer(), nullable=False),
        sa.Column('replaces', sa.Boolean(), nullable=False),
        sa.Column('faces_mode', sa.String(16), nullable=False),
        sa.Column('analyzer', sa.String(32)),
        sa.Column('state', sa.String(16), nullable=False),
        sa.Column('status', sa.String(32)),
        sa.Column('reason', sa.Text()),
        sa.Column('faces', sa.Integer(), nullable=False),
        sa.Column('conflict', sa.Boolean(), nullable=False),
        sa.Column('worker', sa.Text()),
        sa.Column('enqueued_at', _WHEN, nullable=False),
        sa.Column('finished_at', _WHEN),
        sa.UniqueConstraint('space_id', 'path', name='uq_queue_space_path'),
    )
    op.create_index('ix_queue_state', 'ingest_queue', ['state', 'id'])
    op.create_index('ix_queue_run', 'ingest_queue', ['run', 'state'])
    op.create_table(
        'ingest_attempts',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('queue_id', sa.Integer(), nullable=False),
        sa.Column('worker', sa.Text(), nullable=False),
        sa.Column('started_at', _WHEN, nullable=False),
    )
    op.create_index('ix_attempts_queue', 'ingest_attempts', ['queue_id'])
    op.create_table(
        'reductions',
        sa.Column('space_id', sa.Integer(), sa.ForeignKey('indexes.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('uid', sa.String(32), nullable=False),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('dim_in', sa.Integer(), nullable=False),
        sa.Column('dim_out', sa.Integer(), nullable=False),
        sa.Column('mean', sa.LargeBinary(), nullable=False),
        sa.Column('components', sa.LargeBinary(), nullable=False),
        sa.Column('trained_on', sa.Integer(), nullable=False),
        sa.Column('explained', sa.Float(), nullable=False),
        sa.Column('created_at', _WHEN, nullable=False),
    )


def downgrade() -> None:
    op.drop_table('reductions')
    op.drop_index('ix_attempts_queue', 'ingest_attempts')
    op.drop_table('ingest_attempts')
    op.drop_index('ix_queue_run', 'ingest_queue')
    op.drop_index('ix_queue_state', 'ingest_queue')
    op.drop_table('ingest_queue')
