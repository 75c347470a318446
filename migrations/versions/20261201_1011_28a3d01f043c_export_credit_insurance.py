"""Export credit insurance: policies, rates and documents, buyer limits, declarations, overdue reports, claims, recoveries, indemnity assignments

Revision ID: 28a3d01f043c
Revises: b7c82736d192
Create Date: 2026-12-01 10:11:05.076207
"""
from alembic import op
import sqlalchemy as sa


revision = '28a3d01f043c'
down_revision = 'b7c82736d192'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('insurance_policy_counters',
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_seq', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('year', name=op.f('pk_insurance_policy_counters'))
    )
    op.create_table('insurance_policies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('insurer_org_id', sa.Integer(), nullable=False),
    sa.Column('insured_org_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('issued', 'expired', 'cancelled', name='policy_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('status_changed_at', sa.DateTime(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('currencies', sa.String(length=60), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('commercial_coverage', sa.BigInteger(), nullable=False),
    sa.Column('political_coverage', sa.BigInteger(), nullable=False),
    sa.Column('max_liability_amount', sa.BigInteger(), nullable=False),
    sa.Column('declaration_mode', sa.Enum('after_shipment', 'monthly', name='declaration_mode', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('declaration_days', sa.Integer(), nullable=False),
    sa.Column('overdue_report_days', sa.Integer(), nullable=False),
    sa.Column('waiting_days', sa.Integer(), nullable=False),
    sa.Column('insolvency_waiting_days', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('commercial_coverage > 0 AND commercial_coverage <= 10000', name=op.f('ck_insurance_policies_commercial_coverage_fraction')),
    sa.CheckConstraint('declaration_days BETWEEN 1 AND 90', name=op.f('ck_insurance_policies_declaration_days_range')),
    sa.CheckConstraint('end_date > start_date', name=op.f('ck_insurance_policies_period_order')),
    sa.CheckConstraint('insurer_org_id <> insured_org_id', name=op.f('ck_insurance_policies_two_parties')),
    sa.CheckConstraint('length(currency) = 3', name=op.f('ck_insurance_policies_currency_code')),
    sa.CheckConstraint('max_liability_amount > 0', name=op.f('ck_insurance_policies_max_liability_positive')),
    sa.CheckConstraint('overdue_report_days BETWEEN 1 AND 365', name=op.f('ck_insurance_policies_overdue_days_range')),
    sa.CheckConstraint('political_coverage > 0 AND political_coverage <= 10000', name=op.f('ck_insurance_policies_political_coverage_fraction')),
    sa.CheckConstraint('waiting_days BETWEEN 0 AND 720 AND insolvency_waiting_days BETWEEN 0 AND 720', name=op.f('ck_insurance_policies_waiting_days_range')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_insurance_policies_created_by_id_users')),
    sa.ForeignKeyConstraint(['insured_org_id'], ['organisations.id'], name=op.f('fk_insurance_policies_insured_org_id_organisations')),
    sa.ForeignKeyConstraint(['insurer_org_id'], ['organisations.id'], name=op.f('fk_insurance_policies_insurer_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_insurance_policies')),
    sa.UniqueConstraint('number', name=op.f('uq_insurance_policies_number'))
    )
    with op.batch_alter_table('insurance_policies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_insurance_policies_insured_org_id'), ['insured_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_policies_insurer_org_id'), ['insurer_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_policies_status'), ['status'], unique=False)

    op.create_table('insurance_status_changes',
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
    sa.ForeignKeyConstraint(['actor_org_id'], ['organisations.id'], name=op.f('fk_insurance_status_changes_actor_org_id_organisations')),
    sa.ForeignKeyConstraint(['actor_user_id'], ['users.id'], name=op.f('fk_insurance_status_changes_actor_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_insurance_status_changes'))
    )
    with op.batch_alter_table('insurance_status_changes', schema=None) as batch_op:
        batch_op.create_index('ix_insurance_status_changes_subject', ['subject', 'subject_id'], unique=False)

    op.create_table('insurance_buyer_limits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=False),
    sa.Column('insurer_org_id', sa.Integer(), nullable=False),
    sa.Column('insured_org_id', sa.Integer(), nullable=False),
    sa.Column('buyer_name', sa.String(length=200), nullable=False),
    sa.Column('buyer_country', sa.String(length=2), nullable=False),
    sa.Column('buyer_registration_no', sa.String(length=60), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('requested_amount', sa.BigInteger(), nullable=False),
    sa.Column('approved_amount', sa.BigInteger(), nullable=True),
    sa.Column('payment_term_days', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('requested', 'approved', 'refused', 'cancelled', 'withdrawn', name='limit_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('status_changed_at', sa.DateTime(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("status <> 'approved' OR approved_amount IS NOT NULL", name=op.f('ck_insurance_buyer_limits_approved_has_amount')),
    sa.CheckConstraint('approved_amount IS NULL OR approved_amount >= 0', name=op.f('ck_insurance_buyer_limits_approved_not_negative')),
    sa.CheckConstraint('length(buyer_country) = 2', name=op.f('ck_insurance_buyer_limits_country_code')),
    sa.CheckConstraint('payment_term_days BETWEEN 1 AND 360', name=op.f('ck_insurance_buyer_limits_term_range')),
    sa.CheckConstraint('requested_amount > 0', name=op.f('ck_insurance_buyer_limits_requested_positive')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_insurance_buyer_limits_created_by_id_users')),
    sa.ForeignKeyConstraint(['insured_org_id'], ['organisations.id'], name=op.f('fk_insurance_buyer_limits_insured_org_id_organisations')),
    sa.ForeignKeyConstraint(['insurer_org_id'], ['organisations.id'], name=op.f('fk_insurance_buyer_limits_insurer_org_id_organisations')),
    sa.ForeignKeyConstraint(['policy_id'], ['insurance_policies.id'], name=op.f('fk_insurance_buyer_limits_policy_id_insurance_policies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_insurance_buyer_limits'))
    )
    with op.batch_alter_table('insurance_buyer_limits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_insurance_buyer_limits_insured_org_id'), ['insured_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_buyer_limits_insurer_org_id'), ['insurer_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_buyer_limits_policy_id'), ['policy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_buyer_limits_status'), ['status'], unique=False)
        batch_op.create_index('uq_insurance_buyer_limits_one_live', ['policy_id', 'buyer_country', 'buyer_registration_no'], unique=True, postgresql_where=sa.text("status IN ('requested', 'approved')"), sqlite_where=sa.text("status IN ('requested', 'approved')"))

    op.create_table('insurance_policy_documents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=False),
    sa.Column('lang', sa.String(length=10), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('rendered_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['policy_id'], ['insurance_policies.id'], name=op.f('fk_insurance_policy_documents_policy_id_insurance_policies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_insurance_policy_documents')),
    sa.UniqueConstraint('policy_id', 'lang', name=op.f('uq_insurance_policy_documents_policy_id_lang'))
    )
    op.create_table('insurance_policy_rates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=False),
    sa.Column('risk_grade', sa.Integer(), nullable=False),
    sa.Column('max_term_days', sa.Integer(), nullable=False),
    sa.Column('rate', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('max_term_days BETWEEN 1 AND 360', name=op.f('ck_insurance_policy_rates_term_range')),
    sa.CheckConstraint('rate > 0 AND rate < 1000000', name=op.f('ck_insurance_policy_rates_rate_fraction')),
    sa.CheckConstraint('risk_grade BETWEEN 0 AND 7', name=op.f('ck_insurance_policy_rates_risk_grade_range')),
    sa.ForeignKeyConstraint(['policy_id'], ['insurance_policies.id'], name=op.f('fk_insurance_policy_rates_policy_id_insurance_policies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_insurance_policy_rates')),
    sa.UniqueConstraint('policy_id', 'risk_grade', 'max_term_days', name=op.f('uq_insurance_policy_rates_policy_id_risk_grade_max_term_days'))
    )
    with op.batch_alter_table('insurance_policy_rates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_insurance_policy_rates_policy_id'), ['policy_id'], unique=False)

    op.create_table('insurance_declarations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=False),
    sa.Column('buyer_limit_id', sa.Integer(), nullable=False),
    sa.Column('insurer_org_id', sa.Integer(), nullable=False),
    sa.Column('insured_org_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('receivable_id', sa.Integer(), nullable=False),
    sa.Column('waybill_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('invoice_amount', sa.BigInteger(), nullable=False),
    sa.Column('insured_amount', sa.BigInteger(), nullable=False),
    sa.Column('uninsured_amount', sa.BigInteger(), nullable=False),
    sa.Column('limit_used_amount', sa.BigInteger(), nullable=False),
    sa.Column('shipment_date', sa.Date(), nullable=False),
    sa.Column('payment_term_days', sa.Integer(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('declared_on', sa.Date(), nullable=False),
    sa.Column('deadline', sa.Date(), nullable=False),
    sa.Column('risk_grade', sa.Integer(), nullable=False),
    sa.Column('premium_rate', sa.BigInteger(), nullable=False),
    sa.Column('premium_amount', sa.BigInteger(), nullable=False),
    sa.Column('premium_settlement_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('declared', 'settled', 'overdue', 'claimed', 'closed', 'voided', 'cancelled', name='declaration_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('status_changed_at', sa.DateTime(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('due_date >= shipment_date', name=op.f('ck_insurance_declarations_due_after_shipment')),
    sa.CheckConstraint('insured_amount + uninsured_amount = invoice_amount', name=op.f('ck_insurance_declarations_parts_add_up')),
    sa.CheckConstraint('insured_amount >= 0 AND uninsured_amount >= 0', name=op.f('ck_insurance_declarations_parts_not_negative')),
    sa.CheckConstraint('invoice_amount > 0', name=op.f('ck_insurance_declarations_invoice_positive')),
    sa.CheckConstraint('limit_used_amount >= 0', name=op.f('ck_insurance_declarations_used_not_negative')),
    sa.CheckConstraint('premium_amount >= 0', name=op.f('ck_insurance_declarations_premium_not_negative')),
    sa.ForeignKeyConstraint(['buyer_limit_id'], ['insurance_buyer_limits.id'], name=op.f('fk_insurance_declarations_buyer_limit_id_insurance_buyer_limits')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_insurance_declarations_created_by_id_users')),
    sa.ForeignKeyConstraint(['insured_org_id'], ['organisations.id'], name=op.f('fk_insurance_declarations_insured_org_id_organisations')),
    sa.ForeignKeyConstraint(['insurer_org_id'], ['organisations.id'], name=op.f('fk_insurance_declarations_insurer_org_id_organisations')),
    sa.ForeignKeyConstraint(['order_id'], ['trade_orders.id'], name=op.f('fk_insurance_declarations_order_id_trade_orders')),
    sa.ForeignKeyConstraint(['policy_id'], ['insurance_policies.id'], name=op.f('fk_insurance_declarations_policy_id_insurance_policies')),
    sa.ForeignKeyConstraint(['premium_settlement_id'], ['settlement_records.id'], name=op.f('fk_insurance_declarations_premium_settlement_id_settlement_records')),
    sa.ForeignKeyConstraint(['receivable_id'], ['trade_receivables.id'], name=op.f('fk_insurance_declarations_receivable_id_trade_receivables')),
    sa.ForeignKeyConstraint(['waybill_id'], ['trade_waybills.id'], name=op.f('fk_insurance_declarations_waybill_id_trade_waybills')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_insurance_declarations'))
    )
    with op.batch_alter_table('insurance_declarations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_insurance_declarations_buyer_limit_id'), ['buyer_limit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_declarations_due_date'), ['due_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_declarations_insured_org_id'), ['insured_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_declarations_insurer_org_id'), ['insurer_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_declarations_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_declarations_policy_id'), ['policy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_declarations_receivable_id'), ['receivable_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_declarations_status'), ['status'], unique=False)
        batch_op.create_index('uq_insurance_declarations_one_per_order', ['order_id'], unique=True, postgresql_where=sa.text("status <> 'cancelled'"), sqlite_where=sa.text("status <> 'cancelled'"))

    op.create_table('insurance_assignments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('declaration_id', sa.Integer(), nullable=False),
    sa.Column('receivable_id', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=False),
    sa.Column('insurer_org_id', sa.Integer(), nullable=False),
    sa.Column('insured_org_id', sa.Integer(), nullable=False),
    sa.Column('bank_org_id', sa.Integer(), nullable=False),
    sa.Column('encumbrance_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('requested', 'acknowledged', 'active', 'refused', 'withdrawn', 'released', name='assignment_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('status_changed_at', sa.DateTime(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("status <> 'active' OR encumbrance_id IS NOT NULL", name=op.f('ck_insurance_assignments_active_is_registered')),
    sa.ForeignKeyConstraint(['bank_org_id'], ['organisations.id'], name=op.f('fk_insurance_assignments_bank_org_id_organisations')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_insurance_assignments_created_by_id_users')),
    sa.ForeignKeyConstraint(['declaration_id'], ['insurance_declarations.id'], name=op.f('fk_insurance_assignments_declaration_id_insurance_declarations')),
    sa.ForeignKeyConstraint(['encumbrance_id'], ['encumbrances.id'], name=op.f('fk_insurance_assignments_encumbrance_id_encumbrances')),
    sa.ForeignKeyConstraint(['insured_org_id'], ['organisations.id'], name=op.f('fk_insurance_assignments_insured_org_id_organisations')),
    sa.ForeignKeyConstraint(['insurer_org_id'], ['organisations.id'], name=op.f('fk_insurance_assignments_insurer_org_id_organisations')),
    sa.ForeignKeyConstraint(['policy_id'], ['insurance_policies.id'], name=op.f('fk_insurance_assignments_policy_id_insurance_policies')),
    sa.ForeignKeyConstraint(['receivable_id'], ['trade_receivables.id'], name=op.f('fk_insurance_assignments_receivable_id_trade_receivables')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_insurance_assignments')),
    sa.UniqueConstraint('encumbrance_id', name=op.f('uq_insurance_assignments_encumbrance_id'))
    )
    with op.batch_alter_table('insurance_assignments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_insurance_assignments_bank_org_id'), ['bank_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_assignments_declaration_id'), ['declaration_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_assignments_insured_org_id'), ['insured_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_assignments_insurer_org_id'), ['insurer_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_assignments_policy_id'), ['policy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_assignments_receivable_id'), ['receivable_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_assignments_status'), ['status'], unique=False)
        batch_op.create_index('uq_insurance_assignments_one_live', ['declaration_id'], unique=True, postgresql_where=sa.text("status IN ('requested', 'acknowledged', 'active')"), sqlite_where=sa.text("status IN ('requested', 'acknowledged', 'active')"))

    op.create_table('insurance_claims',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('declaration_id', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=False),
    sa.Column('insurer_org_id', sa.Integer(), nullable=False),
    sa.Column('insured_org_id', sa.Integer(), nullable=False),
    sa.Column('filed_by_org_id', sa.Integer(), nullable=False),
    sa.Column('cause', sa.Enum('non_payment', 'insolvency', 'political', name='claim_cause', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('loss_amount', sa.BigInteger(), nullable=False),
    sa.Column('claimable_from', sa.Date(), nullable=False),
    sa.Column('filed_on', sa.Date(), nullable=False),
    sa.Column('coverage', sa.BigInteger(), nullable=True),
    sa.Column('indemnity_currency', sa.String(length=3), nullable=False),
    sa.Column('indemnity_amount', sa.BigInteger(), nullable=True),
    sa.Column('fx_note', sa.String(length=200), nullable=True),
    sa.Column('payee_org_id', sa.Integer(), nullable=True),
    sa.Column('settlement_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('filed', 'under_assessment', 'approved', 'paid', 'rejected', 'withdrawn', name='claim_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('status_changed_at', sa.DateTime(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("status NOT IN ('approved', 'paid') OR (indemnity_amount IS NOT NULL AND payee_org_id IS NOT NULL)", name=op.f('ck_insurance_claims_approved_has_indemnity')),
    sa.CheckConstraint('indemnity_amount IS NULL OR indemnity_amount > 0', name=op.f('ck_insurance_claims_indemnity_positive')),
    sa.CheckConstraint('loss_amount > 0', name=op.f('ck_insurance_claims_loss_positive')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_insurance_claims_created_by_id_users')),
    sa.ForeignKeyConstraint(['declaration_id'], ['insurance_declarations.id'], name=op.f('fk_insurance_claims_declaration_id_insurance_declarations')),
    sa.ForeignKeyConstraint(['filed_by_org_id'], ['organisations.id'], name=op.f('fk_insurance_claims_filed_by_org_id_organisations')),
    sa.ForeignKeyConstraint(['insured_org_id'], ['organisations.id'], name=op.f('fk_insurance_claims_insured_org_id_organisations')),
    sa.ForeignKeyConstraint(['insurer_org_id'], ['organisations.id'], name=op.f('fk_insurance_claims_insurer_org_id_organisations')),
    sa.ForeignKeyConstraint(['payee_org_id'], ['organisations.id'], name=op.f('fk_insurance_claims_payee_org_id_organisations')),
    sa.ForeignKeyConstraint(['policy_id'], ['insurance_policies.id'], name=op.f('fk_insurance_claims_policy_id_insurance_policies')),
    sa.ForeignKeyConstraint(['settlement_id'], ['settlement_records.id'], name=op.f('fk_insurance_claims_settlement_id_settlement_records')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_insurance_claims'))
    )
    with op.batch_alter_table('insurance_claims', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_insurance_claims_declaration_id'), ['declaration_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_claims_insured_org_id'), ['insured_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_claims_insurer_org_id'), ['insurer_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_claims_policy_id'), ['policy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_claims_status'), ['status'], unique=False)
        batch_op.create_index('uq_insurance_claims_one_live', ['declaration_id'], unique=True, postgresql_where=sa.text("status NOT IN ('rejected', 'withdrawn')"), sqlite_where=sa.text("status NOT IN ('rejected', 'withdrawn')"))

    op.create_table('insurance_overdue_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('declaration_id', sa.Integer(), nullable=False),
    sa.Column('insurer_org_id', sa.Integer(), nullable=False),
    sa.Column('overdue_amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reported_on', sa.Date(), nullable=False),
    sa.Column('report_deadline', sa.Date(), nullable=False),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('reported_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('late = (reported_on > report_deadline)', name=op.f('ck_insurance_overdue_reports_late_iff_after')),
    sa.CheckConstraint('overdue_amount > 0', name=op.f('ck_insurance_overdue_reports_overdue_positive')),
    sa.ForeignKeyConstraint(['declaration_id'], ['insurance_declarations.id'], name=op.f('fk_insurance_overdue_reports_declaration_id_insurance_declarations')),
    sa.ForeignKeyConstraint(['insurer_org_id'], ['organisations.id'], name=op.f('fk_insurance_overdue_reports_insurer_org_id_organisations')),
    sa.ForeignKeyConstraint(['reported_by_id'], ['users.id'], name=op.f('fk_insurance_overdue_reports_reported_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_insurance_overdue_reports')),
    sa.UniqueConstraint('declaration_id', name=op.f('uq_insurance_overdue_reports_declaration_id'))
    )
    with op.batch_alter_table('insurance_overdue_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_insurance_overdue_reports_insurer_org_id'), ['insurer_org_id'], unique=False)

    op.create_table('insurance_recoveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('claim_id', sa.Integer(), nullable=False),
    sa.Column('insurer_org_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('insurer_share_currency', sa.String(length=3), nullable=False),
    sa.Column('insurer_share', sa.BigInteger(), nullable=False),
    sa.Column('insured_share', sa.BigInteger(), nullable=False),
    sa.Column('recovered_on', sa.Date(), nullable=False),
    sa.Column('settlement_id', sa.Integer(), nullable=True),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_insurance_recoveries_amount_positive')),
    sa.CheckConstraint('insurer_share >= 0 AND insured_share >= 0', name=op.f('ck_insurance_recoveries_shares_not_negative')),
    sa.ForeignKeyConstraint(['claim_id'], ['insurance_claims.id'], name=op.f('fk_insurance_recoveries_claim_id_insurance_claims')),
    sa.ForeignKeyConstraint(['insurer_org_id'], ['organisations.id'], name=op.f('fk_insurance_recoveries_insurer_org_id_organisations')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], name=op.f('fk_insurance_recoveries_recorded_by_id_users')),
    sa.ForeignKeyConstraint(['settlement_id'], ['settlement_records.id'], name=op.f('fk_insurance_recoveries_settlement_id_settlement_records')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_insurance_recoveries'))
    )
    with op.batch_alter_table('insurance_recoveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_insurance_recoveries_claim_id'), ['claim_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_recoveries_insurer_org_id'), ['insurer_org_id'], unique=False)



def downgrade():
    with op.batch_alter_table('insurance_recoveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_insurance_recoveries_insurer_org_id'))
        batch_op.drop_index(batch_op.f('ix_insurance_recoveries_claim_id'))

    op.drop_table('insurance_recoveries')
    with op.batch_alter_table('insurance_overdue_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_insurance_overdue_reports_insurer_org_id'))

    op.drop_table('insurance_overdue_reports')
    with op.batch_alter_table('insurance_claims', schema=None) as batch_op:
        batch_op.drop_index('uq_insurance_claims_one_live', postgresql_where=sa.text("status NOT IN ('rejected', 'withdrawn')"), sqlite_where=sa.text("status NOT IN ('rejected', 'withdrawn')"))
        batch_op.drop_index(batch_op.f('ix_insurance_claims_status'))
        batch_op.drop_index(batch_op.f('ix_insurance_claims_policy_id'))
        batch_op.drop_index(batch_op.f('ix_insurance_claims_insurer_org_id'))
        batch_op.drop_index(batch_op.f('ix_insurance_claims_insured_org_id'))
        batch_op.drop_index(batch_op.f('ix_insurance_claims_declaration_id'))

    op.drop_table('insurance_claims')
    with op.batch_alter_table('insurance_assignments', schema=None) as batch_op:
        batch_op.drop_index('uq_insurance_assignments_one_live', postgresql_where=sa.text("status IN ('requested', 'acknowledged', 'active')"), sqlite_where=sa.text("status IN ('requested', 'acknowledged', 'active')"))
        batch_op.drop_index(batch_op.f('ix_insurance_assignments_status'))
        batch_op.drop_index(batch_op.f('ix_insurance_assignments_receivable_id'))
        batch_op.drop_index(batch_op.f('ix_insurance_assignments_policy_id'))
        batch_op.drop_index(batch_op.f('ix_insurance_assignments_insurer_org_id'))
        batch_op.drop_index(batch_op.f('ix_insurance_assignments_insured_org_id'))
        batch_op.drop_index(batch_op.f('ix_insurance_assignments_declaration_id'))
        batch_op.drop_index(batch_op.f('ix_insurance_assignments_bank_org_id'))

    op.drop_table('insurance_assignments')
    with op.batch_alter_table('insurance_declarations', schema=None) as batch_op:
        batch_op.drop_index('uq_insurance_declarations_one_per_order', postgresql_where=sa.text("status <> 'cancelled'"), sqlite_where=sa.text("status <> 'cancelled'"))
        batch_op.drop_index(batch_op.f('ix_insurance_declarations_status'))
        batch_op.drop_index(batch_op.f('ix_insurance_declarations_receivable_id'))
        batch_op.drop_index(batch_op.f('ix_insurance_declarations_policy_id'))
        batch_op.drop_index(batch_op.f('ix_insurance_declarations_order_id'))
        batch_op.drop_index(batch_op.f('ix_insurance_declarations_insurer_org_id'))
        batch_op.drop_index(batch_op.f('ix_insurance_declarations_insured_org_id'))
        batch_op.drop_index(batch_op.f('ix_insurance_declarations_due_date'))
        batch_op.drop_index(batch_op.f('ix_insurance_declarations_buyer_limit_id'))

    op.drop_table('insurance_declarations')
    with op.batch_alter_table('insurance_policy_rates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_insurance_policy_rates_policy_id'))

    op.drop_table('insurance_policy_rates')
    op.drop_table('insurance_policy_documents')
    with op.batch_alter_table('insurance_buyer_limits', schema=None) as batch_op:
        batch_op.drop_index('uq_insurance_buyer_limits_one_live', postgresql_where=sa.text("status IN ('requested', 'approved')"), sqlite_where=sa.text("status IN ('requested', 'approved')"))
        batch_op.drop_index(batch_op.f('ix_insurance_buyer_limits_status'))
        batch_op.drop_index(batch_op.f('ix_insurance_buyer_limits_policy_id'))
        batch_op.drop_index(batch_op.f('ix_insurance_buyer_limits_insurer_org_id'))
        batch_op.drop_index(batch_op.f('ix_insurance_buyer_limits_insured_org_id'))

    op.drop_table('insurance_buyer_limits')
    with op.batch_alter_table('insurance_status_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_insurance_status_changes_subject')

    op.drop_table('insurance_status_changes')
    with op.batch_alter_table('insurance_policies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_insurance_policies_status'))
        batch_op.drop_index(batch_op.f('ix_insurance_policies_insurer_org_id'))
        batch_op.drop_index(batch_op.f('ix_insurance_policies_insured_org_id'))

    op.drop_table('insurance_policies')
    op.drop_table('insurance_policy_counters')
