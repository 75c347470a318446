"""The ledger in the browser: accounts and balances per currency, entries, transactions
(paged, filtered, CSV), account statements as PDF, and exchange rates."""
from __future__ import annotations

import csv
import io
import json
import tempfile
from datetime import date

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from werkzeug.wsgi import wrap_file
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from finance_app import authz, clock, pdf
from finance_app.accounts.services import organisation_names
from finance_app.accounts.states import OrgKind
from finance_app.api.schemas import ID
from finance_app.errors import DomainError
from finance_app.extensions import db
from finance_app.web import page_arg
from finance_app.ledger import forms, queries, rates
from finance_app.ledger.models import ExchangeRate, LedgerAccount
from finance_app.ledger.states import AccountType, RateSource, TransactionStatus

bp = Blueprint("ledger", __name__, url_prefix="/ledger")

TYPE_LABELS = {AccountType.ASSET: _l("Asset"), AccountType.LIABILITY: _l("Liability"),
               AccountType.EQUITY: _l("Equity"), AccountType.INCOME: _l("Income"),
               AccountType.EXPENSE: _l("Expense")}
STATUS_LABELS = {TransactionStatus.POSTED: _l("Posted"), TransactionStatus.PENDING: _l("Hold"),
                 TransactionStatus.VOIDED: _l("Voided")}
SOURCE_LABELS = {RateSource.CFETS: _l("CFETS central parity"),
                 RateSource.ECB: _l("ECB reference rate"), RateSource.MANUAL: _l("Entered here")}
# What each account purpose is, in words (purposes not listed show as written).
PURPOSE_LABELS = {
    "bank": _l("Bank account"), "stripe_clearing": _l("Card payments in transit"),
    "fee_income": _l("Service fee income"), "platform_fees": _l("Platform fees due"),
    "fx_position": _l("FX position"),
}


def purpose_label(purpose: str) -> str:
    label = PURPOSE_LABELS.get(purpose)
    return str(label) if label else purpose.replace("_", " ")


def account_name(account: LedgerAccount) -> str:
    return f"{purpose_label(account.purpose)} · {account.currency}"


@bp.app_context_processor
def _helpers():
    """Account names and labels, for every page that shows an account."""
    return {"type_labels": TYPE_LABELS, "transaction_status_labels": STATUS_LABELS,
            "purpose_label": purpose_label, "account_name": account_name,
            "source_labels": SOURCE_LABELS}



def _args() -> dict:
    return {k: v for k, v in request.args.items() if k not in ("page", "format") and v}


def _owners(accounts) -> dict[int, str]:
    return organisation_names(a.org_id for a in accounts)


# --------------------------------------------------------------------------- accounts

@bp.get("/accounts")
@authz.allow(authz.MEMBER)
def accounts():
    form = forms.AccountFilterForm(request.args)
    form.validate()
    operator = current_user.organisation.kind is OrgKind.PLATFORM_OPERATOR
    filters = queries.AccountFilters(
        currency=form.currency.data if not form.currency.errors else None,
        purpose=form.purpose.data or None,
        owner=form.owner.data if operator else None)
    page = queries.accounts(current_user, filters, page=page_arg())
    return render_template("ledger/accounts.html", page=page, form=form, operator=operator,
                           totals=queries.totals_by_currency(current_user),
                           owners=_owners(page.items), args=_args())


def _entry_filters(form: forms.EntryFilterForm) -> queries.EntryFilters:
    form.validate()
    return queries.EntryFilters(date_from=form.value("date_from"),
                                date_to=form.value("date_to"), kind=form.value("kind"))


@bp.get(f"/accounts/<{ID}:account_id>")
@authz.allow(authz.MEMBER)
def account_detail(account_id: int):
    account = queries.get_account(account_id, actor=current_user)
    form = forms.EntryFilterForm(request.args)
    filters = _entry_filters(form)
    if request.args.get("format") == "csv":
        return _entries_csv(account, filters)
    start, end = queries.previous_month(clock.today())
    statement_form = forms.StatementForm(data={"date_from": start, "date_to": end,
                                               "lang": str(current_locale_code())})
    return render_template(
        "ledger/account_detail.html", account=account, form=form,
        page=queries.entries(account, filters, page=page_arg()),
        holds=queries.pending_holds(account), statement_form=statement_form,
        owner=_owners([account]).get(account.org_id), args=_args())


def current_locale_code() -> str:
    from finance_app.i18n import select_locale
    return "zh_CN" if select_locale().startswith("zh") else "en"


def _csv_response(filename: str, header: list[str], rows) -> Response:
    """A CSV download, written while the request's database session is open, to a file
    that spills to disk past a few megabytes (memory stays flat for a long export)."""
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024, mode="w+b")
    text = io.TextIOWrapper(spool, encoding="utf-8-sig", newline="")
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    text.flush()
    text.detach()
    spool.seek(0)
    return Response(wrap_file(request.environ, spool), mimetype="text/csv",
                    direct_passthrough=True,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _entries_csv(account: LedgerAccount, filters: queries.EntryFilters) -> Response:
    def rows():
        for entry, transaction in queries.all_entries(account, filters):
            yield [entry.value_date.isoformat(), transaction.id, transaction.kind,
                   transaction.description, f"{entry.money.amount:f}", entry.currency,
                   f"{account.money(account.normal(entry.balance_after)).amount:f}",
                   transaction.booked_at.isoformat(timespec="seconds") + "Z"]
    return _csv_response(
        f"account-{account.id}-entries.csv",
        ["value_date", "transaction_id", "kind", "description", "amount", "currency",
         "balance_after", "booked_at_utc"], rows())


@bp.get(f"/accounts/<{ID}:account_id>/statement.pdf")
@authz.allow(authz.MEMBER)
def statement_pdf(account_id: int):
    account = queries.get_account(account_id, actor=current_user)
    form = forms.StatementForm(request.args)
    if not form.validate():
        field, errors = next(iter(form.errors.items()))
        from finance_app.web import error_response
        return error_response(422, "validation_failed", str(errors[0]), field)
    lang = form.lang.data or current_locale_code()
    with force_locale(lang):
        statement = queries.statement(account, form.date_from.data, form.date_to.data)
        holder = _owners([account]).get(account.org_id) or _("The platform")
        body = pdf.render_pdf("pdf/statement.html", statement=statement, holder=holder,
                              account_title=account_name(account),
                              type_label=str(TYPE_LABELS[account.type]),
                              generated_at=clock.now(), lang=lang)
    name = f"statement-{account.id}-{form.date_from.data}-{form.date_to.data}.pdf"
    return Response(body, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{name}"'})


# --------------------------------------------------------------------------- transactions

@bp.get("/transactions")
@authz.allow(authz.MEMBER)
def transactions():
    form = forms.EntryFilterForm(request.args)
    form.validate()
    filters = queries.TransactionFilters(
        date_from=form.value("date_from"), date_to=form.value("date_to"),
        kind=form.value("kind"), currency=form.value("currency"))
    if request.args.get("format") == "csv":
        def rows():
            for t in queries.all_transactions(current_user, filters):
                legs = [(e.account_id, f"{e.money.amount:f}", e.currency)
                        for e, _a, _ok in queries.transaction_entries(t, current_user)]
                yield [t.id, t.value_date.isoformat(), t.kind, t.status.value, t.description,
                       json.dumps(legs), t.booked_at.isoformat(timespec="seconds") + "Z",
                       t.reverses_id or ""]
        return _csv_response("transactions.csv",
                             ["id", "value_date", "kind", "status", "description",
                              "entries", "booked_at_utc", "reverses"], rows())
    page = queries.transactions(current_user, filters, page=page_arg())
    return render_template("ledger/transactions.html", page=page, form=form,
                           kinds=queries.transaction_kinds(current_user), args=_args(),
                           entries={t.id: queries.transaction_entries(t, current_user)
                                    for t in page.items})


@bp.get(f"/transactions/<{ID}:transaction_id>")
@authz.allow(authz.MEMBER)
def transaction_detail(transaction_id: int):
    transaction = queries.get_transaction(transaction_id, actor=current_user)
    fx = json.loads(transaction.fx) if transaction.fx else None
    return render_template("ledger/transaction_detail.html", transaction=transaction,
                           entries=queries.transaction_entries(transaction, current_user),
                           related=queries.related(transaction), fx=fx)


# --------------------------------------------------------------------------- rates

@bp.get("/rates")
@authz.allow(authz.MEMBER)
def rates_list():
    base = (request.args.get("base") or "").strip().upper()[:3]
    query = select(ExchangeRate).order_by(ExchangeRate.rate_date.desc(), ExchangeRate.base,
                                          ExchangeRate.quote, ExchangeRate.source)
    if base:
        query = query.where((ExchangeRate.base == base) | (ExchangeRate.quote == base))
    from finance_app.paging import paginate
    page = paginate(query, page_arg())
    lookup = None
    if request.args.get("from") and request.args.get("to"):
        lookup = _lookup(request.args["from"], request.args["to"], request.args.get("on"))
    form = forms.RateForm() if authz.OPERATOR_DECIDER.admits(current_user) else None
    return render_template("ledger/rates.html", page=page, form=form, base=base,
                           lookup=lookup, args=_args())


def _lookup(base: str, quote: str, on: str | None) -> dict:
    try:
        day = date.fromisoformat(on) if on else clock.today()
    except ValueError:
        return {"error": _("Enter the date as YYYY-MM-DD.")}
    try:
        quote_ = rates.find_rate(base.strip().upper()[:3], quote.strip().upper()[:3], day)
    except DomainError as exc:
        return {"error": exc.message}
    return {"quote": quote_, "on": day}


@bp.post("/rates")
@authz.allow(authz.OPERATOR_DECIDER)
def enter_rate():
    form = forms.RateForm()
    if not form.validate_on_submit():
        from finance_app.paging import paginate
        page = paginate(select(ExchangeRate).order_by(ExchangeRate.rate_date.desc()), 1)
        return render_template("ledger/rates.html", page=page, form=form, base="",
                               lookup=None, args={}), 422
    try:
        row = rates.enter_rate(form.base.data, form.quote.data, form.rate.data,
                               form.rate_date.data, actor=current_user, note=form.note.data)
    except DomainError as exc:
        db.session.rollback()
        target = getattr(form, exc.field, None) if exc.field else None
        (target.errors if target is not None else form.form_errors).append(exc.message)
        from finance_app.paging import paginate
        page = paginate(select(ExchangeRate).order_by(ExchangeRate.rate_date.desc()), 1)
        return render_template("ledger/rates.html", page=page, form=form, base="",
                               lookup=None, args={}), 422
    db.session.commit()
    flash(_("Rate saved: 1 %(base)s = %(rate)s %(quote)s on %(date)s.", base=row.base,
            rate=f"{row.rate.normalize():f}", quote=row.quote, date=row.rate_date.isoformat()),
          "success")
    return redirect(url_for(".rates_list"))
