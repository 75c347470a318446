"""Three-document matching (三单对碰): the rules, as pure functions.

``evaluate`` looks at an order and the payments, waybill and inventory found for it and
returns a verdict with its reasons.  It reads attributes only, so it is the same whichever
order the documents arrived in, and it is re-run whenever one of them arrives or changes.
Each reason has a stable code and a sentence a person understands.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable

from stdnum.cn import ric

from finance_app.money import UnknownCurrency, minor_units
from finance_app.trade.states import B2B_MODES, Direction, Verdict


@dataclass(frozen=True)
class Reason:
    code: str
    message: str
    mismatch: bool  # True: the documents disagree; False: something is still missing

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


def _norm(text: str | None) -> str:
    return "".join((text or "").split()).casefold()


def _fmt(amount: Decimal | None, currency: str | None = None) -> str:
    """An amount as a person writes it: the currency's minor units unless it has more."""
    if amount is None:
        return "—"
    digits = 2
    if currency:
        try:
            digits = minor_units(currency)
        except UnknownCurrency:
            pass
    exact = amount.normalize()
    places = max(digits, -exact.as_tuple().exponent if exact.as_tuple().exponent < 0 else 0)
    return f"{amount:,.{places}f}"


ID_CARD = "1"  # 证件类型 1: 身份证 (resident identity card)


def _id_valid(id_type: str | None, number: str | None) -> bool:
    if not number or id_type not in (None, "", ID_CARD):
        return True  # only resident ID numbers carry a check digit we can verify
    return ric.is_valid(number)


def is_deferred(order: Any) -> bool:
    """A B2B export (9710/9810) sold on payment terms: the buyer pays after shipment."""
    return (order.direction == Direction.EXPORT and order.trade_mode in B2B_MODES
            and bool(getattr(order, "payment_term_days", None)))


def evaluate(order: Any, payments: Iterable[Any], waybill: Any | None,
             inventory: Any | None) -> tuple[Verdict, list[Reason]]:
    reasons: list[Reason] = []
    payments = list(payments)

    # Order arithmetic: each line's total is price x quantity.
    for line in getattr(order, "lines", []) or []:
        if line.qty * line.price != line.total_price:
            reasons.append(Reason(
                "line_total_mismatch",
                f"Line {line.gnum}: total {_fmt(line.total_price)} is not price "
                f"{_fmt(line.price)} x quantity {_fmt(line.qty)} = {_fmt(line.qty * line.price)}.",
                True))
    payable = order.goods_value + order.freight + order.tax_total - order.discount
    if order.actual_paid is not None and order.actual_paid != payable:
        reasons.append(Reason(
            "order_total_inconsistent",
            f"The order says {_fmt(order.actual_paid)} was paid, but goods {_fmt(order.goods_value)}"
            f" + freight {_fmt(order.freight)} + tax {_fmt(order.tax_total)} - discount "
            f"{_fmt(order.discount)} = {_fmt(payable)}.", True))
    expected = order.actual_paid if order.actual_paid is not None else payable

    # Buyer identity.
    if not _id_valid(order.buyer_id_type, order.buyer_id_number):
        reasons.append(Reason("buyer_id_invalid",
                              f"The buyer's ID number {order.buyer_id_number} is not a valid "
                              "resident ID number.", True))

    # Payment: amount, currency, reference and payer.  A B2B export on payment terms is
    # paid after shipment: until then it is a receivable, so a missing or partial payment
    # is expected, and only an overpayment is a mismatch.
    deferred = is_deferred(order)
    if not payments:
        if not deferred:
            reasons.append(Reason("payment_missing",
                                  "No payment has been filed for this order yet.", False))
    else:
        currencies = {p.currency for p in payments}
        if currencies != {order.currency}:
            reasons.append(Reason(
                "payment_currency_mismatch",
                f"The order is in {order.currency} but the payment is in "
                f"{', '.join(sorted(currencies))}.", True))
        else:
            paid = sum((p.amount for p in payments), Decimal(0))
            if paid > expected if deferred else paid != expected:
                reasons.append(Reason(
                    "payment_amount_mismatch",
                    f"The payment of {_fmt(paid, order.currency)} {order.currency} does not "
                    f"equal the order's {_fmt(expected, order.currency)} {order.currency}.",
                    True))
        for p in payments:
            if order.pay_transaction_id and p.pay_transaction_id != order.pay_transaction_id:
                reasons.append(Reason(
                    "payment_reference_mismatch",
                    f"The order names transaction {order.pay_transaction_id}, the payment is "
                    f"{p.pay_transaction_id}.", True))
            if order.pay_code and p.pay_code != order.pay_code:
                reasons.append(Reason(
                    "payment_company_mismatch",
                    f"The order names payment company {order.pay_code}, the payment was filed "
                    f"by {p.pay_code}.", True))
            if p.payer_name and order.buyer_name and _norm(p.payer_name) != _norm(order.buyer_name):
                reasons.append(Reason(
                    "payer_not_buyer",
                    f"The payer ({p.payer_name}) is not the buyer ({order.buyer_name}).", True))
            elif (p.payer_id_number and order.buyer_id_number
                  and _norm(p.payer_id_number) != _norm(order.buyer_id_number)):
                reasons.append(Reason(
                    "payer_not_buyer",
                    "The payer's ID number differs from the buyer's.", True))
            if not _id_valid(p.payer_id_type, p.payer_id_number):
                reasons.append(Reason("payer_id_invalid",
                                      f"The payer's ID number {p.payer_id_number} is not a valid "
                                      "resident ID number.", True))

    # Logistics.
    if order.direction == Direction.EXPORT:
        if inventory is None:
            reasons.append(Reason(
                "inventory_missing",
                "No customs inventory ties this order to a waybill yet.", False))
        elif not inventory.logistics_no:
            reasons.append(Reason("inventory_without_waybill",
                                  "The customs inventory names no waybill.", True))
        elif waybill is None:
            reasons.append(Reason(
                "waybill_missing",
                f"The inventory names waybill {inventory.logistics_no}, which has not been "
                "filed yet.", False))
    else:
        if waybill is None:
            reasons.append(Reason("waybill_missing",
                                  "No waybill has been filed for this order yet.", False))
        elif (waybill.consignee and order.consignee
              and _norm(waybill.consignee) != _norm(order.consignee)):
            reasons.append(Reason(
                "consignee_mismatch",
                f"The waybill's consignee ({waybill.consignee}) is not the order's "
                f"({order.consignee}).", True))
        if inventory is not None and inventory.declared_at is not None:
            for p in payments:
                if p.pay_time is not None and p.pay_time > inventory.declared_at:
                    reasons.append(Reason(
                        "payment_after_declaration",
                        f"The payment ({p.pay_time:%Y-%m-%d %H:%M}) is dated after the customs "
                        f"inventory declaration ({inventory.declared_at:%Y-%m-%d %H:%M}).", True))

    if any(r.mismatch for r in reasons):
        return Verdict.MISMATCH, reasons
    if reasons:
        return Verdict.INCOMPLETE, reasons
    return Verdict.VERIFIED, reasons
