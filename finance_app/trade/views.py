"""Trade evidence in the browser: orders and their verdicts, the documents side by side,
uploads (CEB XML or CSV), one document at a time, and what each organisation filed."""
from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from finance_app import authz
from finance_app.accounts.states import OrgKind
from finance_app.api.schemas import ID
from finance_app.extensions import db
from finance_app.i18n import money, number, select_locale
from finance_app.money import UnknownCurrency, minor_units
from finance_app.trade import forms, queries, services
from finance_app.trade.models import ReceivableStatus
from finance_app.trade.states import Direction, DocumentKind, DocumentSource, Verdict
from finance_app.web import error_response, page_arg

bp = Blueprint("trade", __name__, url_prefix="/trade")

VERDICT_LABELS = {Verdict.VERIFIED: _l("Verified"), Verdict.MISMATCH: _l("Mismatch"),
                  Verdict.INCOMPLETE: _l("Incomplete")}
VERDICT_CLASSES = {Verdict.VERIFIED: "status-approved", Verdict.MISMATCH: "status-rejected",
                   Verdict.INCOMPLETE: "status-pending"}
# Each reason code of matching: a short label for lists and a sentence for the detail page.
REASONS = {
    "line_total_mismatch": (_l("Line total wrong"), _l(
        "An order line's total is not its unit price times its quantity.")),
    "order_total_inconsistent": (_l("Order total wrong"), _l(
        "The amount the order says was paid is not goods + freight + tax − discount.")),
    "buyer_id_invalid": (_l("Buyer ID invalid"), _l(
        "The buyer's ID number is not a valid resident identity card number.")),
    "payment_missing": (_l("Payment missing"), _l(
        "No payment has been filed for this order yet.")),
    "payment_currency_mismatch": (_l("Payment currency differs"), _l(
        "The payment is in a different currency from the order.")),
    "payment_amount_mismatch": (_l("Payment amount differs"), _l(
        "The amount paid does not equal the amount the order says is payable.")),
    "payment_reference_mismatch": (_l("Payment reference differs"), _l(
        "The payment's transaction number is not the one the order names.")),
    "payment_company_mismatch": (_l("Payment company differs"), _l(
        "The payment was filed by a different payment company from the one the order names.")),
    "payer_not_buyer": (_l("Payer is not the buyer"), _l(
        "The person who paid is not the buyer named on the order.")),
    "payer_id_invalid": (_l("Payer ID invalid"), _l(
        "The payer's ID number is not a valid resident identity card number.")),
    "inventory_missing": (_l("Inventory missing"), _l(
        "No customs inventory ties this order to a waybill yet.")),
    "inventory_without_waybill": (_l("Inventory without waybill"), _l(
        "The customs inventory names no waybill.")),
    "waybill_missing": (_l("Waybill missing"), _l(
        "The waybill for this order has not been filed yet.")),
    "consignee_mismatch": (_l("Consignee differs"), _l(
        "The waybill's consignee is not the consignee on the order.")),
    "payment_after_declaration": (_l("Paid after declaration"), _l(
        "The payment is dated after the customs inventory was declared.")),
}
FIELD_LABELS = {row[0]: row[1] for row in queries.ROWS}
RECEIVABLE_LABELS = {ReceivableStatus.OPEN: _l("Open"), ReceivableStatus.SETTLED: _l("Settled")}


def reason_label(reason: dict) -> str:
    entry = REASONS.get(reason.get("code"))
    return str(entry[0]) if entry else reason.get("code", "")


def reason_text(reason: dict) -> str:
    """In English, matching's own sentence (it names the amounts); otherwise ours."""
    entry = REASONS.get(reason.get("code"))
    if entry is None or select_locale().startswith("en"):
        return reason.get("message") or ""
    return str(entry[1])


def amount(value: Decimal | None, currency: str | None) -> str:
    """An amount in its currency's minor units, or every digit if it has more."""
    if value is None:
        return "—"
    try:
        digits = minor_units(currency) if currency else None
    except UnknownCurrency:
        digits = None
    if digits is not None and value == value.quantize(Decimal(1).scaleb(-digits)):
        return money(value, currency)
    return f"{number(value.normalize())} {currency or ''}".strip()


def mask_id(value: str | None) -> str:
    """A personal ID number with its middle hidden (it is personal information)."""
    if not value:
        return "—"
    if len(value) <= 8:
        return value[:2] + "*" * (len(value) - 2)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


@bp.context_processor
def _helpers():
    return {"verdict_labels": VERDICT_LABELS, "verdict_classes": VERDICT_CLASSES,
            "reason_label": reason_label, "reason_text": reason_text, "amount": amount,
            "mask_id": mask_id, "kind_labels": forms.KIND_LABELS,
            "direction_labels": forms.DIRECTION_LABELS, "field_labels": FIELD_LABELS,
            "verdict_reasons": services.verdict_reasons}



# --------------------------------------------------------------------------- orders

@bp.get("/orders")
@authz.allow(authz.TRADE_ORDERS)
def orders():
    form = forms.OrderFilterForm(request.args)
    filters = form.filters(page=page_arg())
    page = queries.orders(current_user, filters)
    operator = current_user.organisation.kind is OrgKind.PLATFORM_OPERATOR
    sellers = queries.organisation_names({o.filer_org_id for o in page.items}) if operator else {}
    return render_template("trade/orders.html", page=page, form=form, show_seller=operator,
                           sellers=sellers,
                           args={k: v for k, v in request.args.items() if k != "page"})


@bp.get(f"/orders/<{ID}:order_id>")
@authz.allow(authz.TRADE_ORDERS)
def order_detail(order_id: int):
    order = queries.get_order(order_id, actor=current_user)
    evidence = queries.evidence(order)
    table = queries.side_by_side(evidence)
    histories = [(column, queries.history(column.kind, column.document))
                 for column in table.columns if column.document is not None]
    names = queries.organisation_names({c.document.filer_org_id for c in table.columns
                                        if c.document is not None})
    return render_template("trade/order_detail.html", order=order, evidence=evidence,
                           table=table, histories=histories, names=names)


@bp.get("/receivables")
@authz.allow(authz.TRADE_ORDERS)
def receivables():
    """What overseas buyers owe on verified B2B exports sold on payment terms."""
    raw = request.args.get("status") or ""
    status = ReceivableStatus(raw) if raw in {s.value for s in ReceivableStatus} else None
    page = queries.receivables(current_user, status=status, page=page_arg())
    operator = current_user.organisation.kind is OrgKind.PLATFORM_OPERATOR
    sellers = queries.organisation_names({r.seller_org_id for r in page.items}) if operator else {}
    return render_template(
        "trade/receivables.html", page=page, status=status, show_seller=operator,
        sellers=sellers, outstanding=queries.outstanding, statuses=list(ReceivableStatus),
        status_labels=RECEIVABLE_LABELS, args={"status": status.value} if status else {})


# --------------------------------------------------------------------------- filing

def _upload_page(form, status: int = 200, **context):
    from finance_app.trade.formats import CSV_COLUMNS
    kinds = forms.allowed_kinds(current_user.organisation)
    return render_template("trade/upload.html", form=form,
                           csv_columns={k.value: CSV_COLUMNS[k.value] for k in kinds},
                           **context), status


def _upload_form(kinds, *, formdata=True) -> forms.UploadForm:
    form = forms.UploadForm() if formdata else forms.UploadForm(formdata=None)
    form.set_kind_choices(kinds)
    return form


UPLOAD_SLACK = 256 * 1024  # the multipart form around the file


@bp.record_once
def _raise_upload_limit(state) -> None:
    """Make room for a 20 MB file before anything reads the body (the CSRF check does), so
    a file just over the limit is refused by name and a larger body answers 413."""
    def raise_limit() -> None:
        if request.endpoint == "trade.upload":
            request.max_content_length = forms.UPLOAD_LIMIT + UPLOAD_SLACK
    state.app.before_request_funcs.setdefault(None, []).insert(0, raise_limit)


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc):
    if request.endpoint == "trade.upload" and authz.TRADE_FILER.admits(current_user):
        form = _upload_form(forms.allowed_kinds(current_user.organisation), formdata=False)
        form.file.errors = [_("The upload is larger than 20 MB; nothing was stored.")]
        return _upload_page(form, 413)
    return error_response(413, "too_large", _("The upload is too large."))


@bp.route("/upload", methods=["GET", "POST"])
@authz.allow(authz.TRADE_FILER)
def upload():
    kinds = forms.allowed_kinds(current_user.organisation)
    form = _upload_form(kinds)
    if not form.is_submitted():
        return _upload_page(form)
    if not form.validate_on_submit():
        return _upload_page(form, 422)
    storage = form.file.data
    filename = forms.clean_filename(storage.filename)
    try:
        parsed = forms.read_upload(filename, storage.read(forms.UPLOAD_LIMIT + 1),
                                   form.kind.data or None, form.direction.data)
    except forms.UploadError as exc:
        form.file.errors.append(exc.message)
        return _upload_page(form, 422)
    batch = services.ingest(parsed.documents, actor=current_user, source=parsed.source,
                            direction=parsed.direction, filename=filename,
                            message_type=parsed.message_type, warnings=parsed.warnings)
    summary = {"filename": filename, "message_type": parsed.message_type,
               "accepted": batch.accepted, "rejected": batch.rejected, "batch_id": None}
    results, warnings = queries.batch_results(batch), queries.batch_warnings(batch)
    if batch.accepted:
        db.session.commit()
        summary["batch_id"] = batch.id
    else:
        db.session.rollback()  # nothing was filed: keep no record of the attempt
    return _upload_page(_upload_form(kinds, formdata=False), 200 if batch.accepted else 422,
                        results=results, warnings=warnings, summary=summary)


@bp.route("/new", methods=["GET", "POST"])
@authz.allow(authz.TRADE_FILER)
def new_document():
    org = current_user.organisation
    kinds = forms.allowed_kinds(org)
    requested = request.args.get("kind")
    kind = next((k for k in kinds if k.value == requested), kinds[0])
    form = forms.document_form(kind, org, select_locale())
    if form.validate_on_submit():
        document = form.document()
        batch = services.ingest([document], actor=current_user, source=DocumentSource.FORM,
                                direction=Direction(form.direction.data))
        result = queries.batch_results(batch)[0]
        if result["accepted"]:
            db.session.commit()
            flash(_("%(kind)s %(key)s filed (version %(version)s).", kind=forms.KIND_LABELS[kind],
                    key=result["key"], version=result["version"]), "success")
            if kind is DocumentKind.ORDER:
                return redirect(url_for("trade.order_detail", order_id=result["document_id"]))
            return redirect(url_for("trade.documents", kind=kind.value))
        db.session.rollback()
        form.form_errors.append(result["reason"])
    status = 422 if request.method == "POST" else 200
    return render_template("trade/new_document.html", form=form, kind=kind, kinds=kinds), status


# --------------------------------------------------------------------------- what was filed

DEFAULT_LIST = {OrgKind.LOGISTICS: DocumentKind.WAYBILL,
                OrgKind.PAYMENT_INSTITUTION: DocumentKind.PAYMENT}


@bp.get("/documents")
@authz.allow(authz.TRADE)
def documents():
    org = current_user.organisation
    listed = list(queries.DOCUMENT_MODELS)
    kind = next((k for k in listed if k.value == request.args.get("kind")),
                DEFAULT_LIST.get(org.kind, DocumentKind.PAYMENT))
    form = forms.DocumentFilterForm(request.args)
    page = queries.documents(current_user, kind, form.filters(page=page_arg()))
    linked = {}
    if authz.TRADE_ORDERS.admits(current_user):
        linked = {doc_id: order for doc_id, order in
                  queries.orders_for_documents(page.items, kind).items()
                  if authz.can(current_user, "trade.read_document", order)}
    return render_template("trade/documents.html", kind=kind, kinds=listed, page=page,
                           form=form, linked=linked,
                           args={k: v for k, v in request.args.items() if k != "page"})


@bp.get("/batches")
@authz.allow(authz.TRADE)
def batches():
    page = queries.batches(current_user, page=page_arg())
    return render_template("trade/batches.html", page=page, args={})


@bp.get(f"/batches/<{ID}:batch_id>")
@authz.allow(authz.TRADE)
def batch_detail(batch_id: int):
    batch = queries.get_batch(batch_id, actor=current_user)
    return render_template("trade/batch_detail.html", batch=batch,
                           results=queries.batch_results(batch),
                           warnings=queries.batch_warnings(batch))
