"""faces.vec: the searchable vector on PostgreSQL (pgvector); unused (NULL) elsewhere.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        with op.batch_alter_table('faces') as batch:
            batch.add_column(sa.Column('vec', sa.LargeBinary(), nullable=True))
        return
    try:
        op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except sa.exc.DBAPIError as err:
        from lookalike.errors import ConfigError  # one line on the CLI, not a traceback

        where = bind.engine.url.render_as_string(hide_password=True)
        raise ConfigError(
            f"{where}: lookalike on PostgreSQL needs the pgvector extension; install it on the server "
            "(e.g. apt-get install postgresql-16-pgvector) and run once as a superuser: "
            f"CREATE EXTENSION vector; ({str(err.orig or err).splitlines()[0]})") from None
    op.execute("ALTER TABLE faces ADD COLUMN vec vector")
    # faces stored before this revision: their blobs become vectors (float32, little-endian)
    import numpy as np

    rows = bind.execute(sa.text("SELECT id, embedding FROM faces")).fetchall()
    for fid, blob in rows:
        text = "[" + ",".join(f"{v:.8g}" for v in np.frombuffer(blob, dtype="<f4")) + "]"
        bind.execute(sa.text("UPDATE faces SET vec = CAST(:v AS vector) WHERE id = :i"), {"v": text, "i": fid})


def downgrade() -> None:
    with op.batch_alter_table('faces') as batch:
        batch.drop_column('vec')
