"""The only module that talks to Stripe (the official ``stripe`` SDK).

Keys, the webhook secret and the API base come from the configuration
(``STRIPE_SECRET_KEY``, ``STRIPE_WEBHOOK_SECRET``, ``STRIPE_API_BASE``), so tests point
the SDK at a local Stripe-compatible server. Every call has a short timeout and a couple
of network retries; a Stripe that cannot be reached is ``GatewayUnavailable``, a refused
card ``CardRefused``, both with a sentence a person understands.

Amounts: Stripe wants integers in the currency's smallest unit *as Stripe counts it*,
which is ISO 4217's minor unit except for the currencies below (e.g. Stripe treats MGA
and UGX as zero-decimal, and ISK as two-decimal amounts that must be whole krónur).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import stripe
from flask import current_app
from flask_babel import gettext

from finance_app.errors import DomainError, ValidationFailed
from finance_app.money import Money

# Stripe's zero-decimal currencies: the amount is in whole units.
ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG",
                          "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"})
# Three-decimal currencies: thousandths, and the last digit must be 0.
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
# Sent with two decimals, but Stripe only accepts whole units of them.
WHOLE_UNITS_IN_CENTS = frozenset({"ISK", "HUF", "TWD"})


class GatewayUnavailable(DomainError):
    status_code = 503
    code = "payment_gateway_unavailable"


class CardRefused(ValidationFailed):
    code = "card_refused"


class GatewayRefused(DomainError):
    """Stripe answered, but refused the request (not a card decline)."""
    status_code = 502
    code = "payment_gateway_refused"


@dataclass(frozen=True)
class Intent:
    id: str
    status: str
    amount: int
    currency: str
    client_secret: str | None
    metadata: dict
    failure: str | None = None

    @classmethod
    def of(cls, pi) -> "Intent":
        data = pi.to_dict() if hasattr(pi, "to_dict") else dict(pi)
        error = data.get("last_payment_error") or {}
        return cls(id=data["id"], status=data["status"], amount=int(data["amount"]),
                   currency=str(data["currency"]).upper(),
                   client_secret=data.get("client_secret"),
                   metadata=dict(data.get("metadata") or {}),
                   failure=error.get("message"))


def to_stripe_amount(money: Money) -> int:
    """``money`` in Stripe's integer units; refuses what Stripe cannot charge exactly."""
    code = money.currency
    if code in ZERO_DECIMAL:
        exponent = 0
    elif code in THREE_DECIMAL:
        exponent = 3
    else:
        exponent = 2
    scaled = money.amount.scaleb(exponent)
    whole = code in ZERO_DECIMAL or code in WHOLE_UNITS_IN_CENTS
    if scaled != scaled.to_integral_value() or (
            code in THREE_DECIMAL and int(scaled) % 10) or (
            code in WHOLE_UNITS_IN_CENTS and money.amount != money.amount.to_integral_value()):
        raise ValidationFailed(gettext(
            "%(amount)s cannot be charged by card exactly: card payments in %(currency)s "
            "are in whole %(unit)s.", amount=str(money), currency=code,
            unit=gettext("units") if whole else gettext("hundredths")), field="amount")
    return int(scaled)


def from_stripe_amount(units: int, currency: str) -> Money:
    code = currency.upper()
    exponent = 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
    return Money(Decimal(units).scaleb(-exponent), code).rounded()


def _client() -> stripe.StripeClient:
    config = current_app.config
    key = config.get("STRIPE_SECRET_KEY")
    if not key:
        raise GatewayUnavailable(gettext("Card payments are not set up on this platform; "
                                         "pay by bank transfer."))
    base = config.get("STRIPE_API_BASE")
    return stripe.StripeClient(key, base_addresses={"api": base} if base else None,
                               max_network_retries=config.get("STRIPE_NETWORK_RETRIES", 2),
                               http_client=stripe.RequestsClient(
                                   timeout=config.get("STRIPE_TIMEOUT", 10)))


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except stripe.CardError as exc:
        raise CardRefused(exc.user_message or gettext("The card was refused."),
                          field="card") from None
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        raise GatewayUnavailable(gettext(
            "The card payment service cannot be reached right now; nothing has been "
            "charged or booked. Try again in a few minutes.")) from exc
    except stripe.StripeError as exc:
        status = getattr(exc, "http_status", None) or 0
        if status >= 500:
            raise GatewayUnavailable(gettext(
                "The card payment service cannot be reached right now; nothing has been "
                "charged or booked. Try again in a few minutes.")) from exc
        raise GatewayRefused(gettext("The card payment service refused the request: "
                                     "%(reason)s", reason=exc.user_message or str(exc)[:200])
                             ) from exc


def create_payment_intent(amount: Money, *, idempotency_key: str, metadata: dict,
                          description: str) -> Intent:
    params = {"amount": to_stripe_amount(amount), "currency": amount.currency.lower(),
              "metadata": {**{k: str(v) for k, v in metadata.items()},
                           "description": description[:300]},
              "payment_method_types": ["card"]}
    pi = _call(_client().v1.payment_intents.create, params=params,
               options={"idempotency_key": idempotency_key})
    return Intent.of(pi)


def retrieve_payment_intent(intent_id: str) -> Intent:
    return Intent.of(_call(_client().v1.payment_intents.retrieve, intent_id))


def create_customer(*, name: str, org_id: int, email: str | None) -> str:
    params = {"name": name[:200], "metadata": {"org_id": str(org_id)}}
    if email:
        params["email"] = email
    customer = _call(_client().v1.customers.create, params=params,
                     options={"idempotency_key": f"org-{org_id}-customer"})
    return customer.id


def pay_with_card_token(intent_id: str, *, customer_id: str, token: str,
                        idempotency_key: str) -> Intent:
    """Confirm the PaymentIntent with the card Stripe.js tokenised in the browser (the
    card number never reaches this server): the card is saved on the organisation's
    Stripe customer, then charged. The result may need the customer's authentication
    (3-D Secure: status ``requires_action``), finished in the browser."""
    client = _client()
    card = _call(client.v1.customers.payment_sources.create, customer_id,
                 params={"source": token}, options={"idempotency_key": f"{idempotency_key}-card"})
    _call(client.v1.payment_intents.update, intent_id,
          params={"payment_method": card.id, "customer": customer_id})
    pi = _call(client.v1.payment_intents.confirm, intent_id,
               options={"idempotency_key": f"{idempotency_key}-confirm"})
    return Intent.of(pi)


def cancel_payment_intent(intent_id: str, *, idempotency_key: str) -> Intent | None:
    client = _client()
    current = Intent.of(_call(client.v1.payment_intents.retrieve, intent_id))
    if current.status in ("canceled", "succeeded", "processing"):
        return current
    pi = _call(client.v1.payment_intents.cancel, intent_id,
               options={"idempotency_key": idempotency_key})
    return Intent.of(pi)


class BadSignature(DomainError):
    status_code = 400
    code = "bad_signature"


def verify_webhook(payload: bytes, signature: str | None) -> dict:
    """The event in a webhook request, once Stripe's signature is verified (a bad, stale or
    missing signature raises ``BadSignature``)."""
    secret = current_app.config.get("STRIPE_WEBHOOK_SECRET")
    if not secret:
        raise BadSignature(gettext("Webhooks are not set up on this platform."))
    try:
        event = stripe.Webhook.construct_event(
            payload, signature or "", secret,
            tolerance=current_app.config.get("STRIPE_WEBHOOK_TOLERANCE", 300))
    except stripe.SignatureVerificationError:
        raise BadSignature(gettext("The webhook signature is not valid.")) from None
    except ValueError:
        raise BadSignature(gettext("The webhook body is not a Stripe event.")) from None
    return event.to_dict() if hasattr(event, "to_dict") else dict(event)
