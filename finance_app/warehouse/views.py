"""Warehouses and receipts in the browser: operators register warehouses and issue,
split, deliver and cancel receipts; SMEs see theirs and offer them to banks; banks pledge,
release (whole or in part) and restate what a pledge secures; the platform sets prices and
haircuts. And the public verification page, open to anyone."""
from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

from flask import (
    Blueprint, Response, current_app, flash, redirect, render_template, request, url_for,
)
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from finance_app import authz, clock, outbox, pdf
from finance_app.accounts.models import Organisation
from finance_app.accounts.services import organisation_names
from finance_app.accounts.states import FilingStatus, OrgKind
from finance_app.api.schemas import ID
from finance_app.errors import DomainError
from finance_app.extensions import db, limiter
from finance_app.money import Money
from finance_app.warehouse import forms, queries, services
from finance_app.warehouse.states import ReceiptStatus
from finance_app.web import page_arg

bp = Blueprint("warehouse", __name__, url_prefix="/warehouse")
public_bp = Blueprint("verify", __name__)

WAREHOUSE, OPERATOR_STAFF = authz.WAREHOUSE, authz.WAREHOUSE_STAFF


@bp.context_processor
def _helpers():
    return {"receipt_status_labels": forms.STATUS_LABELS,
            "warehouse_kind_labels": forms.KIND_LABELS, "pct": _pct}


def _pct(value: Decimal | None) -> str:
    if value is None:
        return "—"
    return f"{(value * 100).quantize(Decimal('0.01'))}%"


def _percent(value: Decimal | None) -> Decimal | None:
    """A percentage as typed (70.5) as the fraction the services take (0.705)."""
    return None if value is None else value / 100


def _form_error(form, exc: DomainError) -> None:
    target = getattr(form, exc.field or "", None)
    if target is not None and isinstance(getattr(target, "errors", None), list):
        target.errors.append(exc.message)
    else:
        form.form_errors.append(exc.message)


# --------------------------------------------------------------------------- receipts

@bp.get("/")
@authz.allow(WAREHOUSE)
def receipts():
    raw = request.args.get("status") or ""
    status = ReceiptStatus(raw) if raw in {s.value for s in ReceiptStatus} else None
    filters = queries.ReceiptFilters(status=status, q=request.args.get("q") or None,
                                     pledged_to_me=request.args.get("pledged") == "1")
    page = queries.receipts(current_user, filters, page=page_arg())
    names = organisation_names({r.depositor_org_id for r in page.items}
                               | {r.operator_org_id for r in page.items})
    return render_template("warehouse/receipts.html", page=page, names=names, status=status,
                           statuses=list(ReceiptStatus),
                           calls=queries.margin_calls(current_user),
                           args={k: v for k, v in request.args.items() if k != "page" and v})


def _detail(receipt, status: int = 200, **given):
    encumbrance = services.active_pledge(receipt)
    ltv, ltv_error = None, None
    if encumbrance is not None:
        try:
            ltv = services.loan_to_value(receipt, encumbrance)
        except DomainError as exc:
            ltv_error = exc.message
    banks = [(o.id, o.name) for o in db.session.execute(select(Organisation).where(
        Organisation.kind == OrgKind.BANK,
        Organisation.filing_status == FilingStatus.APPROVED).order_by(Organisation.name))
        .scalars()]
    offer_form = given.get("offer_form") or forms.OfferForm()
    offer_form.bank_org_ids.choices = banks
    context = dict(
        receipt=receipt, encumbrance=encumbrance, ltv=ltv, ltv_error=ltv_error,
        terms=queries.terms(encumbrance), history=queries.history(receipt),
        valuations=queries.valuations(receipt), offers=queries.offers(receipt),
        calls=queries.calls_for(receipt), live_call=services.live_call_for(receipt),
        names=organisation_names({receipt.depositor_org_id, receipt.operator_org_id}
                                 | ({encumbrance.holder_org_id} if encumbrance else set())
                                 | {o.bank_org_id for o in queries.offers(receipt)}),
        warehouse=receipt.warehouse,
        is_operator=authz.can(current_user, "warehouse.operate", receipt),
        is_depositor=authz.can(current_user, "warehouse.offer", receipt),
        may_pledge=(receipt.status in (ReceiptStatus.ISSUED, ReceiptStatus.RELEASED)
                    and authz.can(current_user, "warehouse.pledge", receipt)),
        is_pledgee=bool(encumbrance and authz.can(current_user, "collateral.manage",
                                                  encumbrance)),
        may_release=bool(encumbrance and authz.can(current_user, "collateral.release",
                                                   encumbrance)),
        offer_form=offer_form,
        pledge_form=given.get("pledge_form") or forms.PledgeForm(),
        release_form=given.get("release_form") or forms.ReleaseForm(),
        part_form=given.get("part_form") or forms.PartialReleaseForm(),
        principal_form=given.get("principal_form") or forms.PrincipalForm(),
        split_form=given.get("split_form") or forms.SplitForm(),
        deliver_form=given.get("deliver_form") or forms.DeliverForm(),
        cancel_form=given.get("cancel_form") or forms.CancelForm(),
        error=given.get("error"))
    return render_template("warehouse/receipt_detail.html", **context), status


@bp.get(f"/receipts/<{ID}:receipt_id>")
@authz.allow(WAREHOUSE)
def receipt_detail(receipt_id: int):
    return _detail(services.get_receipt(receipt_id, actor=current_user))


def _act(receipt_id: int, form_name: str, form, action, done: str):
    """Run a receipt action from its form: 422 with the reason on the page, or commit,
    deliver the notices and go back to the receipt."""
    if not form.validate_on_submit():
        return _detail(services.get_receipt(receipt_id, actor=current_user), 422,
                       **{form_name: form})
    try:
        result = action(form)
    except DomainError as exc:
        db.session.rollback()
        receipt = services.get_receipt(receipt_id, actor=current_user)
        _form_error(form, exc)
        return _detail(receipt, 409 if exc.status_code == 409 else 422, error=exc.message,
                       **{form_name: form})
    db.session.commit()
    outbox.deliver_new()
    flash(done, "success")
    target = result.id if hasattr(result, "id") and hasattr(result, "number") else receipt_id
    return redirect(url_for(".receipt_detail", receipt_id=target))


@bp.post(f"/receipts/<{ID}:receipt_id>/offer")
@authz.allow(WAREHOUSE)
def offer(receipt_id: int):
    form = forms.OfferForm()
    form.bank_org_ids.choices = [(o.id, o.name) for o in db.session.execute(
        select(Organisation).where(Organisation.kind == OrgKind.BANK)).scalars()]
    return _act(receipt_id, "offer_form", form, lambda f: services.offer_to_banks(
        receipt_id, f.bank_org_ids.data, actor=current_user) and None,
        _("Offered to the banks you chose."))


@bp.post(f"/receipts/<{ID}:receipt_id>/pledge")
@authz.allow(WAREHOUSE)
def pledge(receipt_id: int):
    form = forms.PledgeForm()

    def run(f):
        services.pledge_receipt(
            receipt_id, actor=current_user, principal=Money.of(f.principal.data,
                                                               f.currency.data,
                                                               field="principal"),
            max_ltv=_percent(f.max_ltv.data), margin_call_ltv=_percent(f.margin_call_ltv.data),
            liquidation_ltv=_percent(f.liquidation_ltv.data), cure_days=f.cure_days.data,
            financing_ref=f.financing_ref.data, registry_ref=f.registry_ref.data)
    return _act(receipt_id, "pledge_form", form, run, _("Pledge registered."))


@bp.post(f"/receipts/<{ID}:receipt_id>/release")
@authz.allow(WAREHOUSE)
def release(receipt_id: int):
    return _act(receipt_id, "release_form", forms.ReleaseForm(),
                lambda f: services.release_pledge(receipt_id, actor=current_user,
                                                  reason=f.reason.data) and None,
                _("Pledge released."))


@bp.post(f"/receipts/<{ID}:receipt_id>/release-part")
@authz.allow(WAREHOUSE)
def release_part(receipt_id: int):
    return _act(receipt_id, "part_form", forms.PartialReleaseForm(),
                lambda f: services.release_part(receipt_id, f.quantity.data,
                                                actor=current_user, reason=f.reason.data)[1],
                _("Part of the goods released: the receipt was split."))


@bp.post(f"/receipts/<{ID}:receipt_id>/principal")
@authz.allow(WAREHOUSE)
def principal(receipt_id: int):
    def run(f):
        receipt = services.get_receipt(receipt_id, actor=current_user)
        encumbrance = services.active_pledge(receipt)
        currency = encumbrance.secured_currency if encumbrance else "USD"
        services.restate_principal(receipt_id, Money.of(f.principal.data, currency,
                                                        field="principal"),
                                   actor=current_user)
    return _act(receipt_id, "principal_form", forms.PrincipalForm(), run,
                _("Outstanding principal restated."))


@bp.post(f"/receipts/<{ID}:receipt_id>/split")
@authz.allow(OPERATOR_STAFF)
def split(receipt_id: int):
    return _act(receipt_id, "split_form", forms.SplitForm(),
                lambda f: services.split_receipt(receipt_id, f.quantity.data,
                                                 actor=current_user)[0],
                _("Receipt split in two."))


@bp.post(f"/receipts/<{ID}:receipt_id>/deliver")
@authz.allow(OPERATOR_STAFF)
def deliver(receipt_id: int):
    return _act(receipt_id, "deliver_form", forms.DeliverForm(),
                lambda f: services.deliver(receipt_id, actor=current_user,
                                           note=f.note.data) and None,
                _("Goods delivered out."))


@bp.post(f"/receipts/<{ID}:receipt_id>/cancel")
@authz.allow(OPERATOR_STAFF)
def cancel(receipt_id: int):
    return _act(receipt_id, "cancel_form", forms.CancelForm(),
                lambda f: services.cancel(receipt_id, actor=current_user,
                                          reason=f.reason.data) and None,
                _("Receipt cancelled."))


@bp.get(f"/receipts/<{ID}:receipt_id>/certificate.pdf")
@authz.allow(WAREHOUSE)
def certificate(receipt_id: int):
    """The receipt's certificate, with its verification code (its operator and depositor
    only: the code is what a third party checks the receipt with)."""
    receipt = services.get_receipt(receipt_id, actor=current_user)
    if current_user.org_id not in (receipt.operator_org_id, receipt.depositor_org_id):
        authz.require(current_user, "warehouse.operate", receipt, hide=False)
    from finance_app.i18n import select_locale
    lang = request.args.get("lang") or ("zh_CN" if select_locale().startswith("zh") else "en")
    lang = lang if lang in ("en", "zh_CN") else "en"
    code = services.verification_code(receipt)
    link = url_for("verify.verify_page", code=code, _external=True)
    import segno
    qr = segno.make(link, error="m").svg_data_uri(scale=4, border=2)
    names = organisation_names({receipt.operator_org_id, receipt.depositor_org_id})
    with force_locale(lang):
        body = pdf.render_pdf("pdf/receipt_certificate.html", receipt=receipt, code=code,
                              link=link, qr=qr, names=names, warehouse=receipt.warehouse,
                              lang=lang, generated_at=clock.now(),
                              status_label=str(forms.STATUS_LABELS[receipt.status]),
                              kind_label=str(forms.KIND_LABELS[receipt.warehouse.kind]))
    return Response(body, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{receipt.number}.pdf"'})


@bp.route("/receipts/new", methods=["GET", "POST"])
@authz.allow(OPERATOR_STAFF)
def new_receipt():
    form = forms.ReceiptForm()
    form.warehouse_id.choices = [(w.id, w.name) for w in queries.warehouses(current_user)]
    form.depositor_org_id.choices = [(o.id, o.name) for o in db.session.execute(
        select(Organisation).where(Organisation.kind == OrgKind.SME,
                                   Organisation.filing_status == FilingStatus.APPROVED)
        .order_by(Organisation.name)).scalars()]
    if request.method == "GET":
        form.expiry_date.data = form.expiry_date.data or clock.today() + timedelta(days=180)
        return render_template("warehouse/new_receipt.html", form=form)
    if not form.validate_on_submit():
        return render_template("warehouse/new_receipt.html", form=form), 422
    try:
        receipt = services.issue_receipt(
            actor=current_user, warehouse_id=form.warehouse_id.data,
            depositor_org_id=form.depositor_org_id.data, expiry_date=form.expiry_date.data,
            goods=services.Goods(
                description=form.goods_description.data, hs_code=form.hs_code.data,
                quantity=form.quantity.data, unit=form.unit.data,
                unit_price=form.unit_price.data, currency=form.currency.data,
                grade=form.grade.data, storage_location=form.storage_location.data,
                valuation_source=form.valuation_source.data, insured=form.insured.data))
    except DomainError as exc:
        db.session.rollback()
        _form_error(form, exc)
        return render_template("warehouse/new_receipt.html", form=form), 422
    db.session.commit()
    outbox.deliver_new()
    flash(_("Receipt %(number)s issued.", number=receipt.number), "success")
    return redirect(url_for(".receipt_detail", receipt_id=receipt.id))


# --------------------------------------------------------------------------- warehouses

def _warehouses_page(form, status: int = 200):
    listed = queries.warehouses(current_user)
    return render_template("warehouse/warehouses.html", warehouses=listed,
                           form=form if authz.can(current_user, "warehouse.register") else None,
                           names=organisation_names({w.operator_org_id for w in listed})), status


@bp.get("/warehouses")
@authz.allow(WAREHOUSE)
def warehouses():
    return _warehouses_page(forms.WarehouseForm())


@bp.post("/warehouses")
@authz.allow(OPERATOR_STAFF)
def register_warehouse():
    form = forms.WarehouseForm()
    if not form.validate_on_submit():
        return _warehouses_page(form, 422)
    try:
        services.register_warehouse(actor=current_user, name=form.name.data,
                                    kind=form.kind.data, address=form.address.data,
                                    country=form.country.data)
    except DomainError as exc:
        db.session.rollback()
        _form_error(form, exc)
        return _warehouses_page(form, 422)
    db.session.commit()
    flash(_("Warehouse registered."), "success")
    return redirect(url_for(".warehouses"))


# --------------------------------------------------------------------------- prices

def _prices_page(status: int = 200, **given):
    return render_template(
        "warehouse/prices.html", page=queries.prices(page=page_arg(),
                                                     hs_code=request.args.get("hs")),
        categories=queries.categories(), default_haircut=services.DEFAULT_HAIRCUT,
        price_form=given.get("price_form") or forms.PriceForm(),
        upload_form=given.get("upload_form") or forms.PriceUploadForm(),
        haircut_form=given.get("haircut_form") or forms.HaircutForm(),
        may_edit=authz.can(current_user, "warehouse.set_haircut"),
        columns=services.PRICE_COLUMNS), status


@bp.get("/prices")
@authz.allow(WAREHOUSE)
def prices():
    return _prices_page()


def _price_action(form_name: str, form, action, done: str):
    if not form.validate_on_submit():
        return _prices_page(422, **{form_name: form})
    try:
        action(form)
    except DomainError as exc:
        db.session.rollback()
        _form_error(form, exc)
        return _prices_page(422, **{form_name: form})
    db.session.commit()
    outbox.deliver_new()
    flash(done, "success")
    return redirect(url_for(".prices"))


@bp.post("/prices")
@authz.allow(authz.OPERATOR_DECIDER)
def enter_price():
    return _price_action("price_form", forms.PriceForm(), lambda f: services.enter_price(
        services.PriceInput(hs_code=f.hs_code.data, unit=f.unit.data, product=f.product.data,
                            unit_price=f.unit_price.data, currency=f.currency.data,
                            valid_from=f.valid_from.data, valid_to=f.valid_to.data,
                            source=f.source.data), actor=current_user),
        _("Price saved; receipts of those goods were revalued."))


@bp.post("/prices/upload")
@authz.allow(authz.OPERATOR_DECIDER)
def upload_prices():
    def run(f):
        data = f.file.data.read(2 * 1024 * 1024 + 1)
        if len(data) > 2 * 1024 * 1024:
            raise services.PriceFileError(_("The file is larger than 2 MB."), field="file")
        services.import_prices(services.parse_price_csv(data), actor=current_user,
                               filename=getattr(f.file.data, "filename", None))
    return _price_action("upload_form", forms.PriceUploadForm(), run,
                         _("Prices imported; receipts of those goods were revalued."))


@bp.post("/haircuts")
@authz.allow(authz.OPERATOR_DECIDER)
def set_haircut():
    return _price_action("haircut_form", forms.HaircutForm(), lambda f: services.set_haircut(
        f.hs_prefix.data, _percent(f.haircut.data), actor=current_user, name=f.name.data),
        _("Haircut saved."))


# --------------------------------------------------------------------------- public

def _verify_limit() -> str:
    return current_app.config.get("VERIFY_RATE_LIMIT", "20 per minute;200 per hour")


@public_bp.route("/verify", methods=["GET", "POST"])
@authz.allow(authz.PUBLIC)
@limiter.limit(_verify_limit)
def verify_page():
    """Anyone checks a receipt's code: genuine or not, its goods and whether it is pledged.
    Every answer takes the same time, whatever the code."""
    form = forms.VerifyForm(request.form if request.method == "POST" else request.args)
    result = None
    if form.code.data:
        started = time.perf_counter()
        result = services.verify(form.code.data)
        # answer no sooner than a fixed delay, so the time says nothing about the code
        remaining = current_app.config.get("VERIFY_MIN_SECONDS", 0.25) - (
            time.perf_counter() - started)
        if remaining > 0:
            time.sleep(remaining)
    response = current_app.make_response(render_template(
        "warehouse/verify.html", form=form, result=result,
        receipt_status_labels=forms.STATUS_LABELS))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
