"""photos.faces_mode, photos.analyzed: what a photo was read with, so that a re-run with other
options (``--faces all`` after ``largest``, ``--analyze`` after none) reads it again instead of
calling it unchanged.

Older rows: a photo stored with more than one face was read with ``all``; one with estimates
was analysed; a one-face photo's mode is not known (NULL: never read again for it).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('photos') as batch:
        batch.add_column(sa.Column('faces_mode', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('analyzed', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE photos SET faces_mode = 'all' WHERE id IN "
               "(SELECT photo_id FROM faces GROUP BY photo_id HAVING count(*) > 1)")
    op.execute("UPDATE photos SET analyzed = true WHERE id IN "
               "(SELECT faces.photo_id FROM faces JOIN face_estimates ON face_estimates.face_id = faces.id)")


def downgrade() -> None:
    with op.batch_alter_table('photos') as batch:
        batch.drop_column('analyzed')
        batch.drop_column('faces_mode')
