"""Payments in the browser: what an organisation owes and is owed, confirming a bank
transfer, paying by card (Stripe.js tokenises the card; the server confirms the
PaymentIntent), the Stripe webhook, the operator's fees and reconciliation."""
from __future__ import annotations

import uuid
from typing import Callable
from urllib.parse import urlparse

from flask import (
    Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import or_, select

from finance_app import authz, outbox
from finance_app.accounts.models import Organisation, User
from finance_app.accounts.services import organisation_names
from finance_app.accounts.states import FilingStatus, OrgKind
from finance_app.api.schemas import ID
from finance_app.errors import DomainError
from finance_app.web import page_arg
from finance_app.extensions import csrf, db
from finance_app.ledger.models import LedgerAccount, LedgerTransaction
from finance_app.money import Money
from finance_app.paging import paginate
from finance_app.settlement import forms, services, stripe_gateway
from finance_app.settlement import reconciliation as recon
from finance_app.settlement.models import SettlementRecord, SettlementStatusChange
from finance_app.settlement.states import SettlementMethod, SettlementStatus

bp = Blueprint("settlement", __name__, url_prefix="/settlement")
webhook_bp = Blueprint("stripe_webhook", __name__)


@bp.context_processor
def _helpers():
    return {"settlement_status_labels": forms.STATUS_LABELS,
            "obligation_labels": forms.KIND_LABELS}



def visible_records(user):
    query = select(SettlementRecord)
    if user.organisation.kind is not OrgKind.PLATFORM_OPERATOR:
        query = query.where(or_(SettlementRecord.payer_org_id == user.org_id,
                                SettlementRecord.payee_org_id == user.org_id))
    return query


# --------------------------------------------------------------------------- records

@bp.get("/")
@authz.allow(authz.MEMBER)
def records():
    query = visible_records(current_user)
    status = request.args.get("status") or ""
    if status in {s.value for s in SettlementStatus}:
        query = query.where(SettlementRecord.status == SettlementStatus(status))
    side = request.args.get("side") or ""
    if side == "pay":
        query = query.where(SettlementRecord.payer_org_id == current_user.org_id)
    elif side == "receive":
        query = query.where(SettlementRecord.payee_org_id == current_user.org_id)
    page = paginate(query.order_by(SettlementRecord.id.desc()), page_arg())
    names = organisation_names({r.payer_org_id for r in page.items} | {r.payee_org_id for r in page.items})
    return render_template("settlement/records.html", page=page, names=names, status=status,
                           side=side, statuses=list(SettlementStatus),
                           args={k: v for k, v in request.args.items() if k != "page" and v})


# What a payment is for, as a link: other domains register a function per prefix of
# ``obligation_ref`` ("loan:12") that returns (label, url) for the reader, or None.
SUBJECT_LINKS: dict[str, Callable[[str, User], tuple[str, str] | None]] = {}


def register_subject_link(prefix: str, link: Callable[[str, User], tuple[str, str] | None]
                          ) -> None:
    SUBJECT_LINKS[prefix] = link


def subject_link(record: SettlementRecord) -> tuple[str, str] | None:
    prefix, _, rest = (record.obligation_ref or "").partition(":")
    link = SUBJECT_LINKS.get(prefix)
    return link(rest, current_user) if link and rest else None


def _detail(record: SettlementRecord, status: int = 200, **forms_):
    history = list(db.session.execute(select(SettlementStatusChange).where(
        SettlementStatusChange.record_id == record.id).order_by(SettlementStatusChange.id))
        .scalars())
    transactions = [db.session.get(LedgerTransaction, t) for t in
                    (record.ledger_transaction_id, record.remittance_transaction_id) if t]
    context = dict(
        record=record, history=history, transactions=transactions,
        subject=subject_link(record),
        names=organisation_names({record.payer_org_id, record.payee_org_id}),
        debit_account=db.session.get(LedgerAccount, record.debit_account_id),
        credit_account=db.session.get(LedgerAccount, record.credit_account_id),
        card_refusal=services.card_allowed(record),
        confirm_form=forms_.get("confirm_form") or forms.ConfirmTransferForm(),
        cancel_form=forms_.get("cancel_form") or forms.CancelForm(),
        remit_form=forms_.get("remit_form") or forms.RemitForm(),
        button=forms.EmptyForm())
    return render_template("settlement/record_detail.html", **context), status


@bp.get(f"/<{ID}:record_id>")
@authz.allow(authz.MEMBER)
def record_detail(record_id: int):
    return _detail(services.get_record(record_id, actor=current_user))


def _refused(record_id: int, exc: DomainError, form, name: str):
    db.session.rollback()
    record = services.get_record(record_id, actor=current_user)
    target = getattr(form, exc.field, None) if exc.field else None
    if target is not None and hasattr(target, "errors") and isinstance(target.errors, list):
        target.errors.append(exc.message)
    else:
        form.form_errors.append(exc.message)
    return _detail(record, 422 if exc.status_code < 500 else exc.status_code, **{name: form})


@bp.post(f"/<{ID}:record_id>/confirm")
@authz.allow(authz.MEMBER)
def confirm(record_id: int):
    form = forms.ConfirmTransferForm()
    if not form.validate_on_submit():
        return _detail(services.get_record(record_id, actor=current_user), 422,
                       confirm_form=form)
    try:
        services.confirm_transfer(record_id, reference=form.reference.data,
                                  value_date=form.value_date.data, actor=current_user)
    except DomainError as exc:
        return _refused(record_id, exc, form, "confirm_form")
    db.session.commit()
    flash(_("Payment confirmed and booked."), "success")
    return redirect(url_for(".record_detail", record_id=record_id))


@bp.post(f"/<{ID}:record_id>/cancel")
@authz.allow(authz.MEMBER)
def cancel(record_id: int):
    form = forms.CancelForm()
    if not form.validate_on_submit():
        return _detail(services.get_record(record_id, actor=current_user), 422,
                       cancel_form=form)
    try:
        services.cancel(record_id, reason=form.reason.data, actor=current_user)
    except DomainError as exc:
        return _refused(record_id, exc, form, "cancel_form")
    db.session.commit()
    outbox.deliver_new()
    flash(_("Payment cancelled."), "success")
    return redirect(url_for(".record_detail", record_id=record_id))


@bp.post(f"/<{ID}:record_id>/remit")
@authz.allow(authz.OPERATOR_DECIDER)
def remit(record_id: int):
    form = forms.RemitForm()
    if not form.validate_on_submit():
        return _detail(services.get_record(record_id, actor=current_user), 422,
                       remit_form=form)
    try:
        services.record_remittance(record_id, reference=form.reference.data,
                                   actor=current_user)
    except DomainError as exc:
        return _refused(record_id, exc, form, "remit_form")
    db.session.commit()
    flash(_("Payout recorded and booked."), "success")
    return redirect(url_for(".record_detail", record_id=record_id))


# --------------------------------------------------------------------------- card

def _stripe_js_origin() -> str:
    parsed = urlparse(current_app.config["STRIPE_JS_URL"])
    return f"{parsed.scheme}://{parsed.netloc}"


def _card_page(record: SettlementRecord, status: int = 200, *, error: str | None = None,
               client_secret: str | None = None):
    form = forms.CardTokenForm()
    if error:
        form.form_errors.append(error)
    html = render_template("settlement/card.html", record=record, form=form,
                           publishable_key=current_app.config.get("STRIPE_PUBLISHABLE_KEY"),
                           stripe_js=current_app.config["STRIPE_JS_URL"],
                           client_secret=client_secret,
                           names=organisation_names({record.payer_org_id, record.payee_org_id}))
    response = current_app.make_response((html, status))
    origin = _stripe_js_origin()
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; img-src 'self' data: {origin}; style-src 'self' 'unsafe-inline'; "
        f"script-src 'self' {origin}; connect-src 'self' {origin}; frame-src {origin}; "
        "frame-ancestors 'none'; form-action 'self'")
    return response


@bp.post(f"/<{ID}:record_id>/card")
@authz.allow(authz.MEMBER)
def start_card(record_id: int):
    """Start (or resume) paying by card, then show the card form."""
    if not forms.EmptyForm().validate_on_submit():
        abort(400)
    try:
        message = services.start_card_payment(record_id, actor=current_user)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "danger")
        return redirect(url_for(".record_detail", record_id=record_id))
    message_id = message.id if message is not None else None
    db.session.commit()
    if message_id is not None and not outbox.deliver(message_id):
        error = db.session.get(outbox.OutboxMessage, message_id).last_error or ""
        flash(_("The card payment service cannot be reached right now; nothing has been "
                "charged or booked. Try again in a few minutes."), "danger")
        current_app.logger.warning("card payment %s not started: %s", record_id, error)
        return redirect(url_for(".record_detail", record_id=record_id))
    return redirect(url_for(".card", record_id=record_id))


@bp.get(f"/<{ID}:record_id>/card")
@authz.allow(authz.MEMBER)
def card(record_id: int):
    record = services.get_record(record_id, actor=current_user)
    authz.require(current_user, "settlement.pay", record, hide=False)
    if record.status is SettlementStatus.PAID:
        return redirect(url_for(".record_detail", record_id=record_id))
    if not record.payment_intent_id:
        flash(_("Start the card payment first."), "warning")
        return redirect(url_for(".record_detail", record_id=record_id))
    return _card_page(record)


@bp.post(f"/<{ID}:record_id>/card/pay")
@authz.allow(authz.MEMBER)
def card_pay(record_id: int):
    form = forms.CardTokenForm()
    record = services.get_record(record_id, actor=current_user)
    if not form.validate_on_submit():
        return _card_page(record, 422, error=next(iter(form.errors.values()))[0])
    try:
        intent = services.pay_with_card(record_id, token=form.token.data, actor=current_user)
    except stripe_gateway.CardRefused as exc:
        db.session.commit()   # the refusal is kept on the record; nothing was booked
        outbox.deliver_new()  # a fresh PaymentIntent for the next card
        return _card_page(services.get_record(record_id, actor=current_user), 422,
                          error=exc.message)
    except DomainError as exc:
        db.session.rollback()
        return _card_page(services.get_record(record_id, actor=current_user),
                          422 if exc.status_code < 500 else exc.status_code,
                          error=exc.message)
    db.session.commit()
    outbox.deliver_new()
    if intent.status == "requires_action":
        return _card_page(services.get_record(record_id, actor=current_user), 200,
                          client_secret=intent.client_secret)
    if intent.status == "succeeded":
        flash(_("Paid by card. Thank you."), "success")
    else:
        flash(_("The card payment is being processed; this page shows when it is paid."),
              "warning")
    return redirect(url_for(".record_detail", record_id=record_id))


@bp.post(f"/<{ID}:record_id>/card/refresh")
@authz.allow(authz.MEMBER)
def card_refresh(record_id: int):
    if not forms.EmptyForm().validate_on_submit():
        abort(400)
    try:
        record = services.refresh_card_payment(record_id, actor=current_user)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "danger")
        return redirect(url_for(".record_detail", record_id=record_id))
    db.session.commit()
    outbox.deliver_new()
    if record.status is SettlementStatus.PAID:
        flash(_("Paid by card. Thank you."), "success")
    elif record.failure_reason:
        flash(record.failure_reason, "danger")
    return redirect(url_for(".record_detail", record_id=record_id))


# --------------------------------------------------------------------------- webhook

@webhook_bp.post("/stripe/webhook")
@authz.allow(authz.PUBLIC)
@csrf.exempt
def stripe_webhook():
    """Stripe's events. A bad or stale signature is refused with 400 and changes nothing;
    an event already handled answers 200 again (Stripe stops resending)."""
    payload = request.get_data(cache=False)
    try:
        event = stripe_gateway.verify_webhook(payload, request.headers.get("Stripe-Signature"))
        outcome = services.handle_stripe_event(event)
    except DomainError as exc:
        db.session.rollback()
        return jsonify({"error": {"code": exc.code, "message": exc.message,
                                  "field": exc.field}}), exc.status_code
    db.session.commit()
    outbox.deliver_new()
    return jsonify({"received": True, "outcome": outcome})


# --------------------------------------------------------------------------- operator

@bp.route("/fees/new", methods=["GET", "POST"])
@authz.allow(authz.OPERATOR)
def new_fee():
    form = forms.FeeForm()
    form.payer_org_id.choices = [
        (o.id, o.name) for o in db.session.execute(select(Organisation).where(
            Organisation.kind != OrgKind.PLATFORM_OPERATOR,
            Organisation.filing_status == FilingStatus.APPROVED).order_by(Organisation.name))
        .scalars()]
    if request.method == "POST" and form.validate_on_submit():
        try:
            record = services.invoice_fee(
                payer_org_id=form.payer_org_id.data,
                amount=Money.of(form.amount.data, form.currency.data),
                description=form.description.data, due_date=form.due_date.data,
                actor=current_user, key=request.form.get("key") or uuid.uuid4().hex)
        except DomainError as exc:
            db.session.rollback()
            target = getattr(form, exc.field or "", None)
            (target.errors if target is not None else form.form_errors).append(exc.message)
            return render_template("settlement/new_fee.html", form=form,
                                   key=request.form.get("key")), 422
        db.session.commit()
        outbox.deliver_new()
        flash(_("Fee charged: %(amount)s.", amount=str(record.money)), "success")
        return redirect(url_for(".record_detail", record_id=record.id))
    status = 422 if request.method == "POST" else 200
    return render_template("settlement/new_fee.html", form=form,
                           key=request.form.get("key") or uuid.uuid4().hex), status


@bp.get("/reconciliation")
@authz.allow(authz.OPERATOR)
def reconciliation():
    awaiting = list(db.session.execute(select(SettlementRecord).where(
        SettlementRecord.method == SettlementMethod.CARD,
        SettlementRecord.status == SettlementStatus.PAID,
        SettlementRecord.remittance_transaction_id.is_(None)).order_by(SettlementRecord.id))
        .scalars())
    return render_template("settlement/reconciliation.html",
                           clearing=recon.clearing(), breaks=recon.breaks(),
                           awaiting=awaiting, pending_outbox=recon.pending_outbox(),
                           names=organisation_names({r.payee_org_id for r in awaiting}))
