"""people.consent_display may be NULL: consent never stated (a public corpus ingested from
folders) is told apart from a profile that withholds it (never shown to visitors).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('people') as batch:
        batch.alter_column('consent_display', existing_type=sa.Boolean(), nullable=True)
    # people stored before: no profile field at all means nobody stated anything
    op.execute("UPDATE people SET consent_display = NULL WHERE consent_display = false AND display_name IS NULL "
               "AND role IS NULL AND organisation IS NULL AND story IS NULL AND tags IS NULL "
               "AND source_url IS NULL AND license IS NULL")


def downgrade() -> None:
    op.execute("UPDATE people SET consent_display = false WHERE consent_display IS NULL")
    with op.batch_alter_table('people') as batch:
        batch.alter_column('consent_display', existing_type=sa.Boolean(), nullable=False)
