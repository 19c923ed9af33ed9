"""people.consent_withdrawn_at: when staff withdrew a person's consent (the HTTP API, the admin
page, ``lib.people.set_consent``). A re-run of a stale manifest that still says "yes" granted it
back without a word, and the person was on the kiosk again (kiosk user test, 2026-12-07, F1);
now only staff grant it again. Older rows: NULL (no withdrawal by staff is known).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('people') as batch:
        batch.add_column(sa.Column('consent_withdrawn_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('people') as batch:
        batch.drop_column('consent_withdrawn_at')
