"""financing time to decision: each approved decision keeps the seconds from its request

Revision ID: 51f4e9846d6d
Revises: 71620ed41628
Create Date: 2026-12-01 16:21:57.869593
"""
from alembic import op
import sqlalchemy as sa


revision = '51f4e9846d6d'
down_revision = '71620ed41628'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('financing_decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seconds_to_decision', sa.Integer(), nullable=True))
        batch_op.drop_index('ix_financing_decisions_approved_at')
        batch_op.create_index('ix_financing_decisions_approved',
                              ['approved_at', 'seconds_to_decision', 'request_id'],
                              unique=False)
    # the decisions approved so far, from their requests' times
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            UPDATE financing_decisions AS d
               SET seconds_to_decision =
                   ROUND(EXTRACT(EPOCH FROM d.approved_at - r.created_at))::integer
              FROM financing_requests AS r
             WHERE r.id = d.request_id AND d.approved_at IS NOT NULL""")
    else:
        op.execute("""
            UPDATE financing_decisions
               SET seconds_to_decision = CAST(ROUND((julianday(approved_at) - julianday(
                   (SELECT r.created_at FROM financing_requests AS r
                     WHERE r.id = financing_decisions.request_id))) * 86400) AS INTEGER)
             WHERE approved_at IS NOT NULL""")


def downgrade():
    with op.batch_alter_table('financing_decisions', schema=None) as batch_op:
        batch_op.drop_index('ix_financing_decisions_approved')
        batch_op.create_index('ix_financing_decisions_approved_at', ['approved_at'],
                              unique=False)
        batch_op.drop_column('seconds_to_decision')
