"""Ledger (accounts, transactions, entries, exchange rates) and settlement (records, their
history, the outbox, Stripe events), with the database rules that keep the ledger whole

Revision ID: 14aa7f6afaad
Revises: b03e787e86ff
Create Date: 2026-11-23 23:13:47.382751
"""
from alembic import op
import sqlalchemy as sa


revision = '14aa7f6afaad'
down_revision = 'b03e787e86ff'
branch_labels = None
depends_on = None


# ----------------------------------------------------------------------------- rules
# The same rules on both databases, in the form each allows.
#  * entries never change and are never deleted; transactions are never deleted, and the
#    only change to one is a hold's status (pending -> posted or voided, once);
#  * an entry's currency is its account's;
#  * a transaction declares how many entries it has: no entry beyond that;
#  * the entries of a transaction sum to zero per currency and phase: on PostgreSQL a
#    deferred constraint trigger checks at COMMIT; on SQLite (no deferred triggers) the
#    transaction's last declared entry checks.

PG_RULES = [
    """CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'ledger %: committed rows never change (%)', TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END $$""",
    """CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()""",
    """CREATE FUNCTION ledger_transaction_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.status <> 'pending' OR NEW.status NOT IN ('posted', 'voided')
           OR (to_jsonb(NEW) - 'status' - 'resolved_at')
              IS DISTINCT FROM (to_jsonb(OLD) - 'status' - 'resolved_at') THEN
            RAISE EXCEPTION 'ledger transaction %: only a pending hold may be posted or voided, once', OLD.id
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER ledger_transactions_update BEFORE UPDATE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_transaction_update()""",
    """CREATE TRIGGER ledger_transactions_no_delete BEFORE DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()""",
    """CREATE FUNCTION ledger_entry_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        declared integer;
    BEGIN
        IF NEW.currency IS DISTINCT FROM (SELECT currency FROM ledger_accounts
                                          WHERE id = NEW.account_id) THEN
            RAISE EXCEPTION 'ledger entry: currency % is not the account''s', NEW.currency
                USING ERRCODE = 'check_violation';
        END IF;
        SELECT entry_count INTO declared FROM ledger_transactions WHERE id = NEW.transaction_id;
        IF (SELECT count(*) FROM ledger_entries WHERE transaction_id = NEW.transaction_id)
           >= declared THEN
            RAISE EXCEPTION 'ledger transaction %: more entries than the % declared',
                NEW.transaction_id, declared USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER ledger_entries_insert BEFORE INSERT ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_insert()""",
    """CREATE FUNCTION ledger_transaction_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        declared integer;
        actual integer;
        off record;
    BEGIN
        SELECT entry_count INTO declared FROM ledger_transactions WHERE id = NEW.transaction_id;
        SELECT count(*) INTO actual FROM ledger_entries WHERE transaction_id = NEW.transaction_id;
        IF actual <> declared THEN
            RAISE EXCEPTION 'ledger transaction %: % entries, % declared',
                NEW.transaction_id, actual, declared USING ERRCODE = 'check_violation';
        END IF;
        SELECT currency, phase, sum(amount) AS total INTO off FROM ledger_entries
            WHERE transaction_id = NEW.transaction_id
            GROUP BY currency, phase HAVING sum(amount) <> 0 LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'ledger transaction %: % % entries sum to %, not zero',
                NEW.transaction_id, off.phase, off.currency, off.total
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION ledger_transaction_balanced()""",
]

SQLITE_RULES = [
    """CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
    BEGIN SELECT RAISE(ABORT, 'ledger ledger_entries: committed rows never change (UPDATE)'); END""",
    """CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
    BEGIN SELECT RAISE(ABORT, 'ledger ledger_entries: committed rows never change (DELETE)'); END""",
    """CREATE TRIGGER ledger_transactions_no_delete BEFORE DELETE ON ledger_transactions
    BEGIN SELECT RAISE(ABORT, 'ledger ledger_transactions: committed rows never change (DELETE)'); END""",
    """CREATE TRIGGER ledger_transactions_update BEFORE UPDATE ON ledger_transactions
    WHEN OLD.status <> 'pending' OR NEW.status NOT IN ('posted', 'voided')
      OR NEW.id IS NOT OLD.id OR NEW.scope IS NOT OLD.scope
      OR NEW.idempotency_key IS NOT OLD.idempotency_key
      OR NEW.request_hash IS NOT OLD.request_hash OR NEW.kind IS NOT OLD.kind
      OR NEW.description IS NOT OLD.description OR NEW.value_date IS NOT OLD.value_date
      OR NEW.entry_count IS NOT OLD.entry_count OR NEW.booked_at IS NOT OLD.booked_at
      OR NEW.actor_id IS NOT OLD.actor_id OR NEW.reverses_id IS NOT OLD.reverses_id
      OR NEW.pending_id IS NOT OLD.pending_id OR NEW.fx IS NOT OLD.fx
      OR NEW.reference_kind IS NOT OLD.reference_kind
      OR NEW.reference_id IS NOT OLD.reference_id
    BEGIN SELECT RAISE(ABORT, 'ledger transaction: only a pending hold may be posted or voided, once'); END""",
    """CREATE TRIGGER ledger_entries_currency BEFORE INSERT ON ledger_entries
    WHEN NEW.currency IS NOT (SELECT currency FROM ledger_accounts WHERE id = NEW.account_id)
    BEGIN SELECT RAISE(ABORT, 'ledger entry: the currency is not the account''s'); END""",
    """CREATE TRIGGER ledger_entries_declared BEFORE INSERT ON ledger_entries
    WHEN (SELECT count(*) FROM ledger_entries WHERE transaction_id = NEW.transaction_id)
         >= (SELECT entry_count FROM ledger_transactions WHERE id = NEW.transaction_id)
      OR NOT EXISTS (SELECT 1 FROM ledger_transactions WHERE id = NEW.transaction_id)
    BEGIN SELECT RAISE(ABORT, 'ledger transaction: more entries than declared'); END""",
    """CREATE TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    WHEN (SELECT count(*) FROM ledger_entries WHERE transaction_id = NEW.transaction_id)
         = (SELECT entry_count FROM ledger_transactions WHERE id = NEW.transaction_id)
     AND EXISTS (SELECT 1 FROM ledger_entries WHERE transaction_id = NEW.transaction_id
                 GROUP BY currency, phase HAVING sum(amount) <> 0)
    BEGIN SELECT RAISE(ABORT, 'ledger transaction: entries do not sum to zero per currency'); END""",
]

PG_DROP = [
    "DROP TRIGGER ledger_entries_balanced ON ledger_entries",
    "DROP TRIGGER ledger_entries_insert ON ledger_entries",
    "DROP TRIGGER ledger_entries_append_only ON ledger_entries",
    "DROP TRIGGER ledger_transactions_update ON ledger_transactions",
    "DROP TRIGGER ledger_transactions_no_delete ON ledger_transactions",
    "DROP FUNCTION ledger_transaction_balanced()",
    "DROP FUNCTION ledger_entry_insert()",
    "DROP FUNCTION ledger_transaction_update()",
    "DROP FUNCTION ledger_refuse_change()",
]
SQLITE_DROP = [f"DROP TRIGGER {name}" for name in (
    "ledger_entries_no_update", "ledger_entries_no_delete", "ledger_transactions_no_delete",
    "ledger_transactions_update", "ledger_entries_currency", "ledger_entries_declared",
    "ledger_entries_balanced")]


def _run(pg: list[str], sqlite: list[str]) -> None:
    for statement in (pg if op.get_bind().dialect.name == "postgresql" else sqlite):
        op.execute(statement)


def upgrade():
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table('outbox_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('topic', sa.String(length=60), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=False),
    sa.Column('status', sa.Enum('pending', 'done', 'failed', name='outbox_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('available_at', sa.DateTime(), nullable=False),
    sa.Column('last_error', sa.String(length=1000), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('done_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_messages')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_outbox_messages_dedupe_key'))
    )
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_messages_due', ['status', 'available_at'], unique=False)

    op.create_table('ledger_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=True),
    sa.Column('owner_kind', sa.Enum('organisation', 'platform', 'loan', 'facility', 'policy', 'fund', name='owner_kind', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('owner_key', sa.String(length=60), nullable=False),
    sa.Column('type', sa.Enum('asset', 'liability', 'equity', 'income', 'expense', name='account_type', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('purpose', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('min_balance', sa.BigInteger(), nullable=True),
    sa.Column('balance', sa.BigInteger(), nullable=False),
    sa.Column('pending_debits', sa.BigInteger(), nullable=False),
    sa.Column('pending_credits', sa.BigInteger(), nullable=False),
    sa.Column('entry_count', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('length(currency) = 3', name=op.f('ck_ledger_accounts_currency_code')),
    sa.CheckConstraint('pending_debits >= 0 AND pending_credits >= 0', name=op.f('ck_ledger_accounts_pending_not_negative')),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_ledger_accounts_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_accounts')),
    sa.UniqueConstraint('owner_key', 'purpose', 'currency', name='owner_purpose_currency')
    )
    with op.batch_alter_table('ledger_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_accounts_org_id'), ['org_id'], unique=False)

    op.create_table('ledger_exchange_rates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('base', sa.String(length=3), nullable=False),
    sa.Column('quote', sa.String(length=3), nullable=False),
    sa.Column('rate', sa.BigInteger(), nullable=False),
    sa.Column('rate_date', sa.Date(), nullable=False),
    sa.Column('source', sa.Enum('cfets', 'ecb', 'manual', name='rate_source', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('entered_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('base <> quote', name=op.f('ck_ledger_exchange_rates_two_currencies')),
    sa.CheckConstraint('rate > 0', name=op.f('ck_ledger_exchange_rates_rate_positive')),
    sa.ForeignKeyConstraint(['entered_by_id'], ['users.id'], name=op.f('fk_ledger_exchange_rates_entered_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_exchange_rates')),
    sa.UniqueConstraint('base', 'quote', 'rate_date', 'source', name='pair_date_source')
    )
    with op.batch_alter_table('ledger_exchange_rates', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_exchange_rates_lookup', ['base', 'quote', 'rate_date'], unique=False)

    op.create_table('ledger_transactions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=30), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('status', sa.Enum('pending', 'posted', 'voided', name='transaction_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('value_date', sa.Date(), nullable=False),
    sa.Column('entry_count', sa.Integer(), nullable=False),
    sa.Column('booked_at', sa.DateTime(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('reverses_id', sa.Integer(), nullable=True),
    sa.Column('pending_id', sa.Integer(), nullable=True),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.Column('fx', sa.Text(), nullable=True),
    sa.Column('reference_kind', sa.String(length=40), nullable=True),
    sa.Column('reference_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_ledger_transactions_actor_id_users')),
    sa.ForeignKeyConstraint(['pending_id'], ['ledger_transactions.id'], name=op.f('fk_ledger_transactions_pending_id_ledger_transactions')),
    sa.ForeignKeyConstraint(['reverses_id'], ['ledger_transactions.id'], name=op.f('fk_ledger_transactions_reverses_id_ledger_transactions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_transactions')),
    sa.UniqueConstraint('pending_id', name=op.f('uq_ledger_transactions_pending_id')),
    sa.UniqueConstraint('reverses_id', name=op.f('uq_ledger_transactions_reverses_id')),
    sa.UniqueConstraint('idempotency_key', 'scope', name='scope_key')
    )
    with op.batch_alter_table('ledger_transactions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_transactions_booked_at'), ['booked_at'], unique=False)
        batch_op.create_index('ix_ledger_transactions_reference', ['reference_kind', 'reference_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_transactions_value_date'), ['value_date'], unique=False)

    op.create_table('ledger_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('transaction_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('phase', sa.Enum('pending', 'posted', name='entry_phase', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('balance_after', sa.BigInteger(), nullable=True),
    sa.Column('sequence', sa.Integer(), nullable=True),
    sa.Column('value_date', sa.Date(), nullable=False),
    sa.CheckConstraint("(phase = 'posted') = (sequence IS NOT NULL AND balance_after IS NOT NULL)", name=op.f('ck_ledger_entries_posted_chain')),
    sa.CheckConstraint('amount <> 0', name=op.f('ck_ledger_entries_amount_not_zero')),
    sa.ForeignKeyConstraint(['account_id'], ['ledger_accounts.id'], name=op.f('fk_ledger_entries_account_id_ledger_accounts')),
    sa.ForeignKeyConstraint(['transaction_id'], ['ledger_transactions.id'], name=op.f('fk_ledger_entries_transaction_id_ledger_transactions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entries')),
    sa.UniqueConstraint('account_id', 'sequence', name='account_sequence')
    )
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_entries_account_date', ['account_id', 'value_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entries_transaction_id'), ['transaction_id'], unique=False)

    op.create_table('settlement_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('obligation_kind', sa.Enum('disbursement', 'repayment', 'interest', 'fee', 'premium', 'claim', 'compensation', 'recovery', name='obligation_kind', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('obligation_ref', sa.String(length=80), nullable=True),
    sa.Column('payer_org_id', sa.Integer(), nullable=False),
    sa.Column('payee_org_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('value_date', sa.Date(), nullable=False),
    sa.Column('method', sa.Enum('bank_transfer', 'card', name='settlement_method', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('cross_border_rmb', sa.Boolean(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'paid', 'failed', 'cancelled', name='settlement_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('debit_account_id', sa.Integer(), nullable=False),
    sa.Column('credit_account_id', sa.Integer(), nullable=False),
    sa.Column('ledger_transaction_id', sa.Integer(), nullable=True),
    sa.Column('bank_reference', sa.String(length=80), nullable=True),
    sa.Column('payment_intent_id', sa.String(length=255), nullable=True),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('failure_reason', sa.String(length=500), nullable=True),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('paid_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint('amount > 0', name=op.f('ck_settlement_records_amount_positive')),
    sa.CheckConstraint('payer_org_id <> payee_org_id', name=op.f('ck_settlement_records_two_parties')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_settlement_records_created_by_id_users')),
    sa.ForeignKeyConstraint(['credit_account_id'], ['ledger_accounts.id'], name=op.f('fk_settlement_records_credit_account_id_ledger_accounts')),
    sa.ForeignKeyConstraint(['debit_account_id'], ['ledger_accounts.id'], name=op.f('fk_settlement_records_debit_account_id_ledger_accounts')),
    sa.ForeignKeyConstraint(['ledger_transaction_id'], ['ledger_transactions.id'], name=op.f('fk_settlement_records_ledger_transaction_id_ledger_transactions')),
    sa.ForeignKeyConstraint(['payee_org_id'], ['organisations.id'], name=op.f('fk_settlement_records_payee_org_id_organisations')),
    sa.ForeignKeyConstraint(['payer_org_id'], ['organisations.id'], name=op.f('fk_settlement_records_payer_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settlement_records')),
    sa.UniqueConstraint('ledger_transaction_id', name=op.f('uq_settlement_records_ledger_transaction_id')),
    sa.UniqueConstraint('payer_org_id', 'idempotency_key', name='payer_key'),
    sa.UniqueConstraint('payment_intent_id', name=op.f('uq_settlement_records_payment_intent_id'))
    )
    with op.batch_alter_table('settlement_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_settlement_records_payee_org_id'), ['payee_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_settlement_records_payer_org_id'), ['payer_org_id'], unique=False)

    op.create_table('settlement_status_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('from_status', sa.String(length=20), nullable=True),
    sa.Column('to_status', sa.String(length=20), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_settlement_status_changes_actor_id_users')),
    sa.ForeignKeyConstraint(['record_id'], ['settlement_records.id'], name=op.f('fk_settlement_status_changes_record_id_settlement_records')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settlement_status_changes'))
    )
    with op.batch_alter_table('settlement_status_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_settlement_status_changes_record_id'), ['record_id'], unique=False)

    op.create_table('stripe_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('payment_intent_id', sa.String(length=255), nullable=True),
    sa.Column('settlement_id', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.String(length=200), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['settlement_id'], ['settlement_records.id'], name=op.f('fk_stripe_events_settlement_id_settlement_records')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stripe_events')),
    sa.UniqueConstraint('event_id', name=op.f('uq_stripe_events_event_id'))
    )
    with op.batch_alter_table('stripe_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stripe_events_payment_intent_id'), ['payment_intent_id'], unique=False)

    # ### end Alembic commands ###
    _run(PG_RULES, SQLITE_RULES)


def downgrade():
    _run(PG_DROP, SQLITE_DROP)
    with op.batch_alter_table('stripe_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stripe_events_payment_intent_id'))

    op.drop_table('stripe_events')
    with op.batch_alter_table('settlement_status_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_settlement_status_changes_record_id'))

    op.drop_table('settlement_status_changes')
    with op.batch_alter_table('settlement_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_settlement_records_payer_org_id'))
        batch_op.drop_index(batch_op.f('ix_settlement_records_payee_org_id'))

    op.drop_table('settlement_records')
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entries_transaction_id'))
        batch_op.drop_index('ix_ledger_entries_account_date')

    op.drop_table('ledger_entries')
    with op.batch_alter_table('ledger_transactions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_transactions_value_date'))
        batch_op.drop_index('ix_ledger_transactions_reference')
        batch_op.drop_index(batch_op.f('ix_ledger_transactions_booked_at'))

    op.drop_table('ledger_transactions')
    with op.batch_alter_table('ledger_exchange_rates', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_exchange_rates_lookup')

    op.drop_table('ledger_exchange_rates')
    with op.batch_alter_table('ledger_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_accounts_org_id'))

    op.drop_table('ledger_accounts')
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_messages_due')

    op.drop_table('outbox_messages')
    # ### end Alembic commands ###
