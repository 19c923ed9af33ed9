"""indexes.centroid_generation: counts every change to a space's centroids, so a process
that keeps them (the HTTP API, the kiosk, a webcam) sees another process's writes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('indexes') as batch:
        batch.add_column(sa.Column('centroid_generation', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('indexes') as batch:
        batch.drop_column('centroid_generation')
