"""Risk compensation fund: funds, the banks they cover, budget top-ups, claims for defaulted loans (one live claim per loan), status history

Revision ID: b99f65e3d690
Revises: a4e703c92ee0
Create Date: 2026-12-01 13:01:17.670417
"""
from alembic import op
import sqlalchemy as sa


revision = 'b99f65e3d690'
down_revision = 'a4e703c92ee0'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('compensation_funds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('operator_org_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('share', sa.BigInteger(), nullable=False),
    sa.Column('cap_per_loan_amount', sa.BigInteger(), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('product_kinds', sa.String(length=100), nullable=False),
    sa.Column('status', sa.Enum('active', 'paused', 'closed', name='fund_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('status_changed_at', sa.DateTime(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('cap_per_loan_amount > 0', name=op.f('ck_compensation_funds_cap_positive')),
    sa.CheckConstraint('end_date >= start_date', name=op.f('ck_compensation_funds_period_order')),
    sa.CheckConstraint('length(currency) = 3', name=op.f('ck_compensation_funds_currency_code')),
    sa.CheckConstraint('share > 0 AND share <= 10000', name=op.f('ck_compensation_funds_share_fraction')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_compensation_funds_created_by_id_users')),
    sa.ForeignKeyConstraint(['operator_org_id'], ['organisations.id'], name=op.f('fk_compensation_funds_operator_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compensation_funds')),
    sa.UniqueConstraint('name', name=op.f('uq_compensation_funds_name'))
    )
    with op.batch_alter_table('compensation_funds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compensation_funds_operator_org_id'), ['operator_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_compensation_funds_status'), ['status'], unique=False)

    op.create_table('compensation_status_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=20), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('from_status', sa.String(length=20), nullable=True),
    sa.Column('to_status', sa.String(length=20), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('actor_org_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_org_id'], ['organisations.id'], name=op.f('fk_compensation_status_changes_actor_org_id_organisations')),
    sa.ForeignKeyConstraint(['actor_user_id'], ['users.id'], name=op.f('fk_compensation_status_changes_actor_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compensation_status_changes'))
    )
    with op.batch_alter_table('compensation_status_changes', schema=None) as batch_op:
        batch_op.create_index('ix_compensation_status_changes_subject', ['subject', 'subject_id'], unique=False)

    op.create_table('compensation_fund_banks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fund_id', sa.Integer(), nullable=False),
    sa.Column('bank_org_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['bank_org_id'], ['organisations.id'], name=op.f('fk_compensation_fund_banks_bank_org_id_organisations')),
    sa.ForeignKeyConstraint(['fund_id'], ['compensation_funds.id'], name=op.f('fk_compensation_fund_banks_fund_id_compensation_funds')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compensation_fund_banks')),
    sa.UniqueConstraint('fund_id', 'bank_org_id', name=op.f('uq_compensation_fund_banks_fund_id_bank_org_id'))
    )
    with op.batch_alter_table('compensation_fund_banks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compensation_fund_banks_fund_id'), ['fund_id'], unique=False)

    op.create_table('compensation_top_ups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fund_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('ledger_transaction_id', sa.Integer(), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('amount > 0', name=op.f('ck_compensation_top_ups_amount_positive')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_compensation_top_ups_created_by_id_users')),
    sa.ForeignKeyConstraint(['fund_id'], ['compensation_funds.id'], name=op.f('fk_compensation_top_ups_fund_id_compensation_funds')),
    sa.ForeignKeyConstraint(['ledger_transaction_id'], ['ledger_transactions.id'], name=op.f('fk_compensation_top_ups_ledger_transaction_id_ledger_transactions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compensation_top_ups')),
    sa.UniqueConstraint('ledger_transaction_id', name=op.f('uq_compensation_top_ups_ledger_transaction_id'))
    )
    with op.batch_alter_table('compensation_top_ups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compensation_top_ups_fund_id'), ['fund_id'], unique=False)

    op.create_table('compensation_claims',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fund_id', sa.Integer(), nullable=False),
    sa.Column('operator_org_id', sa.Integer(), nullable=False),
    sa.Column('loan_id', sa.Integer(), nullable=False),
    sa.Column('bank_org_id', sa.Integer(), nullable=False),
    sa.Column('sme_org_id', sa.Integer(), nullable=False),
    sa.Column('loan_currency', sa.String(length=3), nullable=False),
    sa.Column('principal_lost_amount', sa.BigInteger(), nullable=False),
    sa.Column('share', sa.BigInteger(), nullable=False),
    sa.Column('share_amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('converted_amount', sa.BigInteger(), nullable=False),
    sa.Column('claimed_amount', sa.BigInteger(), nullable=False),
    sa.Column('capped_by_loan_cap', sa.Boolean(), nullable=False),
    sa.Column('fx_note', sa.String(length=200), nullable=True),
    sa.Column('compensation_amount', sa.BigInteger(), nullable=True),
    sa.Column('capped_by_budget', sa.Boolean(), nullable=False),
    sa.Column('ledger_transaction_id', sa.Integer(), nullable=True),
    sa.Column('settlement_id', sa.Integer(), nullable=True),
    sa.Column('filed_on', sa.Date(), nullable=False),
    sa.Column('status', sa.Enum('submitted', 'approved', 'paid', 'rejected', 'withdrawn', name='compensation_claim_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('status_changed_at', sa.DateTime(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("status NOT IN ('approved', 'paid') OR (compensation_amount IS NOT NULL AND settlement_id IS NOT NULL AND ledger_transaction_id IS NOT NULL)", name=op.f('ck_compensation_claims_approved_is_booked')),
    sa.CheckConstraint('claimed_amount > 0 AND claimed_amount <= converted_amount', name=op.f('ck_compensation_claims_claimed_within_share')),
    sa.CheckConstraint('compensation_amount IS NULL OR (compensation_amount > 0 AND compensation_amount <= claimed_amount)', name=op.f('ck_compensation_claims_compensation_within_claim')),
    sa.CheckConstraint('principal_lost_amount > 0', name=op.f('ck_compensation_claims_loss_positive')),
    sa.CheckConstraint('share > 0 AND share <= 10000', name=op.f('ck_compensation_claims_share_fraction')),
    sa.CheckConstraint('share_amount >= 0 AND converted_amount >= 0', name=op.f('ck_compensation_claims_not_negative')),
    sa.ForeignKeyConstraint(['bank_org_id'], ['organisations.id'], name=op.f('fk_compensation_claims_bank_org_id_organisations')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_compensation_claims_created_by_id_users')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_compensation_claims_decided_by_id_users')),
    sa.ForeignKeyConstraint(['fund_id'], ['compensation_funds.id'], name=op.f('fk_compensation_claims_fund_id_compensation_funds')),
    sa.ForeignKeyConstraint(['ledger_transaction_id'], ['ledger_transactions.id'], name=op.f('fk_compensation_claims_ledger_transaction_id_ledger_transactions')),
    sa.ForeignKeyConstraint(['loan_id'], ['financing_loans.id'], name=op.f('fk_compensation_claims_loan_id_financing_loans')),
    sa.ForeignKeyConstraint(['operator_org_id'], ['organisations.id'], name=op.f('fk_compensation_claims_operator_org_id_organisations')),
    sa.ForeignKeyConstraint(['settlement_id'], ['settlement_records.id'], name=op.f('fk_compensation_claims_settlement_id_settlement_records')),
    sa.ForeignKeyConstraint(['sme_org_id'], ['organisations.id'], name=op.f('fk_compensation_claims_sme_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compensation_claims'))
    )
    with op.batch_alter_table('compensation_claims', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compensation_claims_bank_org_id'), ['bank_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_compensation_claims_fund_id'), ['fund_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_compensation_claims_loan_id'), ['loan_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_compensation_claims_status'), ['status'], unique=False)
        batch_op.create_index('uq_compensation_claims_one_live', ['loan_id'], unique=True, postgresql_where=sa.text("status IN ('submitted', 'approved', 'paid')"), sqlite_where=sa.text("status IN ('submitted', 'approved', 'paid')"))



def downgrade():
    with op.batch_alter_table('compensation_claims', schema=None) as batch_op:
        batch_op.drop_index('uq_compensation_claims_one_live', postgresql_where=sa.text("status IN ('submitted', 'approved', 'paid')"), sqlite_where=sa.text("status IN ('submitted', 'approved', 'paid')"))
        batch_op.drop_index(batch_op.f('ix_compensation_claims_status'))
        batch_op.drop_index(batch_op.f('ix_compensation_claims_loan_id'))
        batch_op.drop_index(batch_op.f('ix_compensation_claims_fund_id'))
        batch_op.drop_index(batch_op.f('ix_compensation_claims_bank_org_id'))

    op.drop_table('compensation_claims')
    with op.batch_alter_table('compensation_top_ups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compensation_top_ups_fund_id'))

    op.drop_table('compensation_top_ups')
    with op.batch_alter_table('compensation_fund_banks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compensation_fund_banks_fund_id'))

    op.drop_table('compensation_fund_banks')
    with op.batch_alter_table('compensation_status_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_compensation_status_changes_subject')

    op.drop_table('compensation_status_changes')
    with op.batch_alter_table('compensation_funds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compensation_funds_status'))
        batch_op.drop_index(batch_op.f('ix_compensation_funds_operator_org_id'))

    op.drop_table('compensation_funds')
