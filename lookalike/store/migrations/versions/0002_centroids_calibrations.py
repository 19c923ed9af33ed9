"""Person and corpus centroids (running sums), and calibrated verdict thresholds.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'centroids',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('space_id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=True),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('sum', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['person_id'], ['people.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['space_id'], ['indexes.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('space_id', 'person_id', name='uq_centroids_space_person'),
    )
    op.create_table(
        'calibrations',
        sa.Column('space_id', sa.Integer(), nullable=False),
        sa.Column('threshold', sa.Float(), nullable=False),
        sa.Column('floor', sa.Float(), nullable=False),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('figures', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['space_id'], ['indexes.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('space_id'),
    )
    # libraries ingested before this revision: build centroids from the stored vectors
    conn = op.get_bind()
    import numpy as np

    sums: dict = {}
    for space_id, person_id, blob in conn.execute(sa.text(
            "select space_id, person_id, embedding from faces")):
        vec = np.frombuffer(blob, dtype="<f4").astype(np.float64)
        keys = [(space_id, None)] + ([(space_id, person_id)] if person_id is not None else [])
        for key in keys:
            total, n = sums.get(key, (0.0, 0))
            sums[key] = (total + vec, n + 1)
    for (space_id, person_id), (total, n) in sums.items():
        conn.execute(sa.text("insert into centroids (space_id, person_id, count, sum) values "
                             "(:s, :p, :n, :b)"),
                     {"s": space_id, "p": person_id, "n": n, "b": np.asarray(total, dtype="<f8").tobytes()})


def downgrade() -> None:
    op.drop_table('calibrations')
    op.drop_table('centroids')
