"""statistics: daily order summary

The dashboard's per-day summaries of the orders (statistics_order_days: amounts as the
scaled integers of ExactDecimal(5)) and of financing (statistics_financing_days: minor
units), and their refresh watermark (statistics_summary_state); indexes on the orders'
business-day columns (order date; app time and creation time of orders without one,
partial), on what changed since a refresh (updated_at, the verdicts' evaluated_at) and on
the financing times days are read by (requests sent, decisions approved, loans accepted).

Revision ID: 71620ed41628
Revises: b99f65e3d690
Create Date: 2026-12-01 13:50:04.456274
"""
from alembic import op
import sqlalchemy as sa


revision = '71620ed41628'
down_revision = 'b99f65e3d690'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('statistics_financing_days',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('figure', sa.Enum('request', 'target', 'offer', 'rejection', 'loan', name='financing_figure', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('zone', sa.String(length=40), nullable=True),
    sa.Column('product_kind', sa.String(length=20), nullable=True),
    sa.Column('bank_org_id', sa.Integer(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_statistics_financing_days'))
    )
    with op.batch_alter_table('statistics_financing_days', schema=None) as batch_op:
        batch_op.create_index('ix_statistics_financing_days_day', ['day'], unique=False)

    op.create_table('statistics_order_days',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('zone', sa.String(length=40), nullable=True),
    sa.Column('trade_mode', sa.String(length=4), nullable=True),
    sa.Column('buyer_country', sa.String(length=2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('verdict', sa.Enum('verified', 'mismatch', 'incomplete', name='verdict', native_enum=False, create_constraint=True, length=20), nullable=True),
    sa.Column('orders', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_statistics_order_days'))
    )
    with op.batch_alter_table('statistics_order_days', schema=None) as batch_op:
        batch_op.create_index('ix_statistics_order_days_day', ['day'], unique=False)

    op.create_table('statistics_summary_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('covered_until', sa.Date(), nullable=False),
    sa.Column('changes_until', sa.DateTime(), nullable=False),
    sa.Column('zones_digest', sa.String(length=64), nullable=False),
    sa.Column('refreshed_at', sa.DateTime(), nullable=False),
    sa.Column('days_refreshed', sa.Integer(), nullable=False),
    sa.Column('request_id_until', sa.Integer(), nullable=False),
    sa.Column('decision_id_until', sa.Integer(), nullable=False),
    sa.Column('loan_id_until', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_statistics_summary_state'))
    )
    with op.batch_alter_table('financing_decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_financing_decisions_approved_at'), ['approved_at'], unique=False)

    with op.batch_alter_table('financing_loans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_financing_loans_accepted_at'), ['accepted_at'], unique=False)

    with op.batch_alter_table('financing_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_financing_requests_created_at'), ['created_at'], unique=False)

    with op.batch_alter_table('trade_orders', schema=None) as batch_op:
        batch_op.create_index('ix_trade_orders_app_time_undated', ['app_time'], unique=False, sqlite_where=sa.text('order_date IS NULL'), postgresql_where=sa.text('order_date IS NULL'))
        batch_op.create_index('ix_trade_orders_created_at_undated', ['created_at'], unique=False, sqlite_where=sa.text('order_date IS NULL AND app_time IS NULL'), postgresql_where=sa.text('order_date IS NULL AND app_time IS NULL'))
        batch_op.create_index('ix_trade_orders_order_date', ['order_date'], unique=False)
        batch_op.create_index('ix_trade_orders_updated_at', ['updated_at'], unique=False)

    with op.batch_alter_table('trade_verdicts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_trade_verdicts_evaluated_at'), ['evaluated_at'], unique=False)



def downgrade():
    with op.batch_alter_table('trade_verdicts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_trade_verdicts_evaluated_at'))

    with op.batch_alter_table('trade_orders', schema=None) as batch_op:
        batch_op.drop_index('ix_trade_orders_updated_at')
        batch_op.drop_index('ix_trade_orders_order_date')
        batch_op.drop_index('ix_trade_orders_created_at_undated', sqlite_where=sa.text('order_date IS NULL AND app_time IS NULL'), postgresql_where=sa.text('order_date IS NULL AND app_time IS NULL'))
        batch_op.drop_index('ix_trade_orders_app_time_undated', sqlite_where=sa.text('order_date IS NULL'), postgresql_where=sa.text('order_date IS NULL'))

    with op.batch_alter_table('financing_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_financing_requests_created_at'))

    with op.batch_alter_table('financing_loans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_financing_loans_accepted_at'))

    with op.batch_alter_table('financing_decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_financing_decisions_approved_at'))

    op.drop_table('statistics_summary_state')
    with op.batch_alter_table('statistics_order_days', schema=None) as batch_op:
        batch_op.drop_index('ix_statistics_order_days_day')

    op.drop_table('statistics_order_days')
    with op.batch_alter_table('statistics_financing_days', schema=None) as batch_op:
        batch_op.drop_index('ix_statistics_financing_days_day')

    op.drop_table('statistics_financing_days')
