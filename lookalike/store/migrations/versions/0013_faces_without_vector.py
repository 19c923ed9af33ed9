"""PostgreSQL: a partial index of the faces whose ``vec`` is empty (nothing elsewhere).

Faces stored while the library's vectors were in Milvus have no ``faces.vec``; opened with
pgvector again (one machine without ``LOOKALIKE_VECTORS``), its searches missed every one of
them in silence (scale user test, 2026-12-07, F6). The pgvector backend now fills them when it
opens the index; this index, empty once they are filled, makes asking for them free on a
million faces (a scan of the table took most of a second).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE INDEX IF NOT EXISTS ix_faces_without_vec ON faces (space_id) WHERE vec IS NULL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_faces_without_vec")
