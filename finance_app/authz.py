"""Every permission rule, in one place.

Two layers:

* **Endpoint policies.** Every view and API endpoint declares a ``Policy`` with ``@allow``:
  which organisation kinds and roles may use it and whether the organisation's filing
  must be approved.  ``enforce_endpoint_policy`` runs before every request and refuses
  endpoints that declare nothing, so a forgotten declaration closes a route, never opens it.
* **Object rules.** ``RULES`` maps "<domain>.<verb>" to a predicate on (user, object);
  services call ``require`` before acting, so views, the API, the CLI and tests all pass
  through the same check.  List queries use the ``visible_*`` scoping helpers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from flask import current_app, request
from flask_babel import gettext
from flask_login import current_user

from finance_app.accounts.states import FilingStatus, OrgKind, Role
from finance_app.errors import Forbidden, NotFound, Unauthenticated

ANY_KIND = frozenset(OrgKind)
ANY_ROLE = frozenset(Role)


@dataclass(frozen=True)
class Policy:
    name: str
    anonymous: bool = False                 # open to everyone, signed in or not
    kinds: frozenset[OrgKind] = ANY_KIND
    roles: frozenset[Role] = ANY_ROLE
    approved_only: bool = True              # the organisation's filing must be approved
    description: str = ""

    def admits(self, user: Any) -> bool:
        """Would this policy let ``user`` (possibly anonymous) through?"""
        if self.anonymous:
            return True
        if user is None or not getattr(user, "is_authenticated", False):
            return False
        if not user.is_active:
            return False
        org = user.organisation
        if org.kind not in self.kinds:
            return False
        if not user.roles.intersection(self.roles):
            return False
        if self.approved_only and org.filing_status is not FilingStatus.APPROVED:
            return False
        return True


def _p(name: str, **kwargs: Any) -> Policy:
    for key in ("kinds", "roles"):
        if key in kwargs:
            kwargs[key] = frozenset(kwargs[key])
    return Policy(name, **kwargs)


K, R = OrgKind, Role
PUBLIC = _p("public", anonymous=True, description="anyone")
SIGNED_IN = _p("signed_in", approved_only=False,
               description="any signed-in user, whatever the filing status")
FILING_ADMIN = _p("filing_admin", roles={R.ADMIN}, approved_only=False,
                  description="an organisation admin, whatever the filing status")
MEMBER = _p("member", description="any user of an approved organisation")
ORG_ADMIN = _p("org_admin", roles={R.ADMIN}, description="an admin of an approved organisation")
DIRECTORY = _p("directory", kinds={K.BANK, K.INSURER, K.PLATFORM_OPERATOR},
               description="banks, insurers and the platform operator")
OPERATOR = _p("operator", kinds={K.PLATFORM_OPERATOR}, description="platform operator staff")
OPERATOR_DECIDER = _p("operator_decider", kinds={K.PLATFORM_OPERATOR},
                      roles={R.APPROVER, R.ADMIN},
                      description="platform operator approvers and admins")
# Trade evidence: the kinds that file documents (trade.services.FILER_KINDS) and the operator.
TRADE_KINDS = frozenset({K.SME, K.LOGISTICS, K.PAYMENT_INSTITUTION, K.PLATFORM_OPERATOR})
TRADE = _p("trade", kinds=TRADE_KINDS,
           description="SMEs, logistics companies, payment institutions and the platform "
                       "operator: the trade documents and uploads they may see")
TRADE_FILER = _p("trade_filer", kinds=TRADE_KINDS, roles={R.ADMIN, R.OFFICER},
                 description="admins and officers of organisations that file trade documents, "
                             "and of the platform operator")
TRADE_ORDERS = _p("trade_orders", kinds={K.SME, K.PLATFORM_OPERATOR},
                  description="SMEs (their own orders) and the platform operator")

# Warehouse receipts: the parties of a receipt (its operator, depositor, the banks it was
# offered or pledged to) and the platform; the object rules decide which receipts.
WAREHOUSE = _p("warehouse", kinds={K.WAREHOUSE_OPERATOR, K.SME, K.BANK, K.PLATFORM_OPERATOR},
               description="warehouse operators, SMEs, banks and the platform operator")
WAREHOUSE_STAFF = _p("warehouse_staff", kinds={K.WAREHOUSE_OPERATOR},
                     roles={R.OFFICER, R.APPROVER},
                     description="officers and approvers of warehouse operators")

# Financing: SMEs (their requests and loans), banks (their products, reviews and loans) and
# the platform operator (everything, read only); the object rules decide which.
FINANCING = _p("financing", kinds={K.SME, K.BANK, K.PLATFORM_OPERATOR},
               description="SMEs, banks and the platform operator")
FINANCING_SME = _p("financing_sme", kinds={K.SME}, roles={R.ADMIN, R.OFFICER, R.APPROVER},
                   description="SMEs: the marketplace, their requests and repayments")
FINANCING_BANK = _p("financing_bank", kinds={K.BANK},
                    description="banks: products, facilities, reviews and loans")

# Export credit insurance: insurers, the SMEs they insure, the banks indemnities are
# assigned to, and the platform; the object rules decide which policies and claims.
INSURANCE = _p("insurance", kinds={K.INSURER, K.SME, K.BANK, K.PLATFORM_OPERATOR},
               description="insurers, SMEs, banks and the platform operator")
INSURANCE_STAFF = _p("insurance_staff", kinds={K.INSURER}, roles={R.OFFICER, R.APPROVER},
                     description="officers and approvers of insurers")
INSURANCE_INSURED = _p("insurance_insured", kinds={K.SME}, roles={R.OFFICER, R.APPROVER},
                       description="officers and approvers of SMEs")
INSURANCE_PARTY = _p("insurance_party", kinds={K.INSURER, K.SME, K.BANK},
                     roles={R.OFFICER, R.APPROVER},
                     description="officers and approvers of insurers, SMEs and banks")

# The risk compensation fund: the platform operator runs funds (its approvers and admins
# decide), banks claim for their defaulted loans (officers and approvers).
COMPENSATION = _p("compensation", kinds={K.BANK, K.PLATFORM_OPERATOR},
                  description="banks and the platform operator")
COMPENSATION_BANK = _p("compensation_bank", kinds={K.BANK}, roles={R.OFFICER, R.APPROVER},
                       description="officers and approvers of banks")
# Statistics monitoring: the zone's figures across every organisation, for the operator only.
STATISTICS = _p("statistics", kinds={K.PLATFORM_OPERATOR},
                description="platform operator staff: the zone's statistics dashboard")

POLICIES: dict[str, Policy] = {p.name: p for p in (
    PUBLIC, SIGNED_IN, FILING_ADMIN, MEMBER, ORG_ADMIN, DIRECTORY, OPERATOR, OPERATOR_DECIDER,
    TRADE, TRADE_FILER, TRADE_ORDERS, WAREHOUSE, WAREHOUSE_STAFF, FINANCING, FINANCING_SME,
    FINANCING_BANK, INSURANCE, INSURANCE_STAFF, INSURANCE_INSURED, INSURANCE_PARTY,
    COMPENSATION, COMPENSATION_BANK, STATISTICS)}


def allow(policy: Policy) -> Callable:
    """Declare who may use a view. Read by ``enforce_endpoint_policy``."""
    def decorate(view: Callable) -> Callable:
        view._policy = policy  # type: ignore[attr-defined]
        return view
    return decorate


def policy_for(endpoint: str | None) -> Policy | None:
    if endpoint is None:
        return None
    if endpoint == "static" or endpoint.endswith(".static") or endpoint.startswith("api-docs."):
        return PUBLIC  # static files and the OpenAPI document
    if request.method == "OPTIONS":
        return PUBLIC  # Flask's automatic answer: the Allow header, nothing else
    view = current_app.view_functions.get(endpoint)
    policy = getattr(view, "_policy", None)
    if policy is None and view is not None:
        # flask-smorest MethodViews: the policy sits on the class or the method.
        view_class = getattr(view, "view_class", None)
        if view_class is not None:
            name = "get" if request.method == "HEAD" else request.method.lower()  # as MethodView
            method = getattr(view_class, name, None)
            policy = getattr(method, "_policy", None) or getattr(view_class, "_policy", None)
    return policy


class FilingNotApproved(Forbidden):
    code = "filing_not_approved"


def enforce_endpoint_policy() -> None:
    """``before_request`` hook: refuse the request unless the endpoint's policy admits the user."""
    if request.endpoint is None:  # 404 / 405: let Flask answer
        return
    policy = policy_for(request.endpoint)
    if policy is None:
        raise Forbidden(gettext("This page declares no access policy."), code="no_policy")
    if policy.anonymous:
        return
    user = current_user
    if not user.is_authenticated:
        raise Unauthenticated(gettext("Sign in to continue."))
    if policy.admits(user):
        return
    org = user.organisation
    kind_role_ok = org.kind in policy.kinds and user.roles.intersection(policy.roles)
    if kind_role_ok and org.filing_status is not FilingStatus.APPROVED:
        raise FilingNotApproved(filing_block_message(org))
    raise Forbidden()


def filing_block_message(org: Any) -> str:
    status = org.filing_status
    if status is FilingStatus.PENDING:
        return gettext("Your organisation's filing is pending review by the platform "
                       "operator; you can act once it is approved.")
    if status is FilingStatus.REJECTED:
        return gettext("Your organisation's filing was rejected: %(reason)s",
                       reason=org.filing_reason)
    return gettext("Your organisation is suspended: %(reason)s", reason=org.filing_reason)


# --------------------------------------------------------------------------- object rules

def _is_admin_of(user: Any, org_id: int) -> bool:
    return user.org_id == org_id and Role.ADMIN in user.roles


def _can_read_profile(user: Any, org: Any) -> bool:
    # "File once, shared by all": banks, insurers and the operator read approved profiles;
    # everyone reads their own; the operator also reads filings it must decide.
    if org.id == user.org_id:
        return True
    if user.organisation.filing_status is not FilingStatus.APPROVED:
        return False  # an unvetted (or suspended) registrant reads no one else's profile
    if user.organisation.kind is OrgKind.PLATFORM_OPERATOR:
        return True
    return (user.organisation.kind in (OrgKind.BANK, OrgKind.INSURER)
            and org.filing_status is FilingStatus.APPROVED)


def _is_operator(user: Any) -> bool:
    return user.organisation.kind is OrgKind.PLATFORM_OPERATOR


def _trade_codes(org: Any) -> set[str]:
    """The codes a trade document names its e-commerce company (ebcCode) by."""
    return {code for code in (org.customs_code, org.credit_code) if code}


def _can_read_trade_document(user: Any, doc: Any) -> bool:
    # The operator reads every document; an organisation reads what it filed; an SME also
    # reads the payment slips and inventories that name it as the e-commerce company, and
    # the waybills its inventories name.
    if _is_operator(user) or doc.filer_org_id == user.org_id:
        return True
    org = user.organisation
    if org.kind is not OrgKind.SME:
        return False
    if getattr(doc, "ebc_code", None) is not None:
        return doc.ebc_code in _trade_codes(org)
    if hasattr(doc, "logistics_no") and hasattr(doc, "consignee"):   # a waybill
        from finance_app.trade.queries import waybill_named_by
        return waybill_named_by(doc, _trade_codes(org))
    return False


def _is_bank_officer(user: Any) -> bool:
    return user.organisation.kind is OrgKind.BANK and user.has_role(Role.OFFICER, Role.APPROVER)


def _is_warehouse_staff(user: Any) -> bool:
    return (user.organisation.kind is OrgKind.WAREHOUSE_OPERATOR
            and user.has_role(Role.OFFICER, Role.APPROVER))


def _can_read_receipt(user: Any, receipt: Any) -> bool:
    # The issuing operator, the depositor, a bank it was offered or pledged to, the platform.
    if _is_operator(user) or user.org_id in (receipt.operator_org_id, receipt.depositor_org_id):
        return True
    return user.organisation.kind is OrgKind.BANK and (
        receipt.is_offered_to(user.org_id) or receipt.pledged_ever_to(user.org_id))


def _can_read_account(user: Any, account: Any) -> bool:
    # The operator reads every account (the platform's own included); an organisation
    # reads the accounts that are its own, or that are kept for its loans and policies.
    return _is_operator(user) or (account.org_id is not None and account.org_id == user.org_id)


def _can_read_transaction(user: Any, transaction: Any) -> bool:
    if _is_operator(user):
        return True
    from finance_app.ledger.queries import transaction_touches
    return transaction_touches(transaction, user.org_id)


def _is_insurer_staff(user: Any) -> bool:
    return user.organisation.kind is OrgKind.INSURER and user.has_role(Role.OFFICER,
                                                                       Role.APPROVER)


def _acts_for_insured(user: Any, obj: Any) -> bool:
    return (user.organisation.kind is OrgKind.SME and obj.insured_org_id == user.org_id
            and user.has_role(Role.OFFICER, Role.APPROVER))


def _bank_holds_assignment(user: Any, obj: Any, *, active_only: bool = False) -> bool:
    if user.organisation.kind is not OrgKind.BANK:
        return False
    from finance_app.insurance.queries import assigned_to
    return assigned_to(user.org_id, obj, active_only=active_only)


def _can_read_insurance(user: Any, obj: Any) -> bool:
    # The insurer and the insured SME of the policy, the platform operator, and a bank an
    # indemnity under it is (or was) assigned to: the policy, that declaration, its claim.
    if _is_operator(user) or user.org_id in (obj.insurer_org_id, obj.insured_org_id):
        return True
    return _bank_holds_assignment(user, obj)


def _is_party(user: Any, record: Any) -> bool:
    return user.org_id in (record.payer_org_id, record.payee_org_id)


def _is_sme_staff(user: Any) -> bool:
    return user.organisation.kind is OrgKind.SME and user.has_role(
        Role.OFFICER, Role.APPROVER, Role.ADMIN)


def _is_bank_approver(user: Any) -> bool:
    return user.organisation.kind is OrgKind.BANK and user.has_role(Role.APPROVER)


def _can_read_request(user: Any, request: Any) -> bool:
    if _is_operator(user) or request.sme_org_id == user.org_id:
        return True
    return user.organisation.kind is OrgKind.BANK and any(
        t.bank_org_id == user.org_id for t in request.targets)


def _can_read_decision(user: Any, decision: Any) -> bool:
    # a bank its own decisions; the SME only those approved (a bank's draft is its own)
    if _is_operator(user) or decision.bank_org_id == user.org_id:
        return True
    return decision.request.sme_org_id == user.org_id and decision.approved_at is not None


def _can_read_fund(user: Any, fund: Any) -> bool:
    # the operator every fund; a bank the funds that cover it (all banks, or it by name)
    if _is_operator(user):
        return True
    return user.organisation.kind is OrgKind.BANK and (
        not fund.bank_org_ids or user.org_id in fund.bank_org_ids)


def _can_read_product(user: Any, product: Any) -> bool:
    return (product.status.value == "active" or product.bank_org_id == user.org_id
            or _is_operator(user))


def _can_read_rating(user: Any, org: Any) -> bool:
    """An SME's rating: the SME itself, the platform, a bank it asked for financing and an
    insurer that insures it."""
    if _is_operator(user) or user.org_id == org.id:
        return True
    from sqlalchemy import exists, select

    from finance_app.extensions import db
    kind = user.organisation.kind
    if kind is OrgKind.BANK:
        from finance_app.financing.models import FinancingRequest, RequestTarget
        related = exists().where(RequestTarget.bank_org_id == user.org_id,
                                 RequestTarget.request_id == FinancingRequest.id,
                                 FinancingRequest.sme_org_id == org.id)
    elif kind is OrgKind.INSURER:
        from finance_app.insurance.models import Policy
        related = exists().where(Policy.insurer_org_id == user.org_id,
                                 Policy.insured_org_id == org.id)
    else:
        return False
    return db.session.execute(select(related)).scalar_one()


RULES: dict[str, Callable[[Any, Any], bool]] = {
    "accounts.read_profile": _can_read_profile,
    "accounts.edit_filing": lambda u, org: _is_admin_of(u, org.id),
    "accounts.decide_filing": lambda u, org: (
        u.organisation.kind is OrgKind.PLATFORM_OPERATOR
        and u.has_role(Role.APPROVER, Role.ADMIN) and org.id != u.org_id),
    "accounts.manage_users": lambda u, target: _is_admin_of(u, target.org_id),
    "accounts.manage_tokens": lambda u, token: _is_admin_of(u, token.org_id),
    "audit.read_all": lambda u, _=None: u.organisation.kind is OrgKind.PLATFORM_OPERATOR,
    # orders, payments, waybills and inventories
    "trade.read_document": _can_read_trade_document,
    "trade.read_batch": lambda u, batch: _is_operator(u) or batch.org_id == u.org_id,
    "trade.read_receivable": lambda u, rec: _is_operator(u) or rec.seller_org_id == u.org_id,
    # the ledger and exchange rates
    "ledger.read_account": _can_read_account,
    "ledger.read_transaction": _can_read_transaction,
    # settlement: the payer pays, the payee confirms a transfer and may cancel, the
    # platform operator passes card payments on and charges its fees
    "settlement.read": lambda u, record: _is_operator(u) or _is_party(u, record),
    "settlement.pay": lambda u, record: (
        record.payer_org_id == u.org_id and u.has_role(Role.OFFICER, Role.APPROVER, Role.ADMIN)),
    "settlement.confirm": lambda u, record: (
        record.payee_org_id == u.org_id and u.has_role(Role.OFFICER, Role.APPROVER)),
    "settlement.cancel": lambda u, record: (
        (record.payee_org_id == u.org_id and u.has_role(Role.OFFICER, Role.APPROVER))
        or (_is_operator(u) and u.has_role(Role.APPROVER, Role.ADMIN))),
    "settlement.remit": lambda u, _=None: _is_operator(u) and u.has_role(Role.APPROVER, Role.ADMIN),
    "settlement.invoice_fee": lambda u, _=None: (
        _is_operator(u) and u.has_role(Role.OFFICER, Role.APPROVER, Role.ADMIN)),
    "settlement.reconcile": lambda u, _=None: _is_operator(u),
    # warehouses and receipts (``obj``: a warehouse or a receipt, by its operator_org_id)
    "warehouse.register": lambda u, _=None: _is_warehouse_staff(u),
    "warehouse.operate": lambda u, obj: _is_warehouse_staff(u) and obj.operator_org_id == u.org_id,
    "warehouse.read_receipt": _can_read_receipt,
    "warehouse.offer": lambda u, receipt: (
        u.organisation.kind is OrgKind.SME and receipt.depositor_org_id == u.org_id
        and u.has_role(Role.OFFICER, Role.APPROVER)),
    "warehouse.pledge": lambda u, receipt: (
        _is_bank_officer(u) and receipt.is_offered_to(u.org_id)),
    "warehouse.set_haircut": lambda u, _=None: (
        _is_operator(u) and u.has_role(Role.APPROVER, Role.ADMIN)),
    # export credit insurance (``obj``: a policy, limit, declaration, claim or assignment)
    "insurance.issue": lambda u, _=None: _is_insurer_staff(u),
    "insurance.manage": lambda u, obj: _is_insurer_staff(u) and obj.insurer_org_id == u.org_id,
    "insurance.read": _can_read_insurance,
    "insurance.act_for_insured": _acts_for_insured,
    # a claim: the insured SME, or the bank its indemnity is assigned to (active)
    "insurance.claim": lambda u, declaration: (
        _acts_for_insured(u, declaration)
        or (_is_bank_officer(u) and _bank_holds_assignment(u, declaration, active_only=True))),
    "insurance.accept_assignment": lambda u, assignment: (
        _is_bank_officer(u) and assignment.bank_org_id == u.org_id),
    # the collateral registry: the holder bank's officers pledge, its approvers release
    "collateral.encumber": lambda u, holder: _is_bank_officer(u) and holder.id == u.org_id,
    "collateral.read": lambda u, enc: _is_operator(u) or enc.holder_org_id == u.org_id,
    "collateral.manage": lambda u, enc: _is_bank_officer(u) and enc.holder_org_id == u.org_id,
    # financing: banks publish products, grant facilities, review and decide (an officer
    # prepares, an approver approves), disburse; SMEs request, accept and repay
    "financing.read_product": _can_read_product,
    "financing.manage_products": lambda u, obj: (
        _is_bank_officer(u) and getattr(obj, "bank_org_id", getattr(obj, "id", None)) == u.org_id),
    "financing.grant_facility": lambda u, org: _is_bank_approver(u) and org.id == u.org_id,
    "financing.read_facility": lambda u, f: (
        _is_operator(u) or u.org_id in (f.bank_org_id, f.sme_org_id)),
    "financing.browse": lambda u, org: _is_sme_staff(u) and org.id == u.org_id,
    "financing.request": lambda u, org: (
        _is_sme_staff(u) and u.has_role(Role.OFFICER, Role.APPROVER) and org.id == u.org_id),
    "financing.read_request": _can_read_request,
    "financing.manage_request": lambda u, req: (
        _is_sme_staff(u) and u.has_role(Role.OFFICER, Role.APPROVER)
        and req.sme_org_id == u.org_id),
    "financing.review": lambda u, target: (
        _is_operator(u) or (u.organisation.kind is OrgKind.BANK
                            and target.bank_org_id == u.org_id)),
    "financing.prepare": lambda u, target: (
        _is_bank_officer(u) and target.bank_org_id == u.org_id),
    "financing.approve": lambda u, decision: (
        _is_bank_approver(u) and decision.bank_org_id == u.org_id),
    "financing.read_decision": _can_read_decision,
    "financing.read_loan": lambda u, loan: (
        _is_operator(u) or u.org_id in (loan.bank_org_id, loan.sme_org_id)),
    "financing.disburse": lambda u, loan: _is_bank_officer(u) and loan.bank_org_id == u.org_id,
    "financing.cancel_loan": lambda u, loan: (
        (_is_bank_approver(u) and loan.bank_org_id == u.org_id)
        or (_is_sme_staff(u) and u.has_role(Role.OFFICER, Role.APPROVER)
            and loan.sme_org_id == u.org_id)),
    "financing.repay": lambda u, loan: _is_sme_staff(u) and loan.sme_org_id == u.org_id,
    # the risk compensation fund: the operator's approvers run funds and decide claims;
    # a bank's officers claim for (and withdraw claims on) its own loans
    "compensation.manage": lambda u, _=None: (
        _is_operator(u) and u.has_role(Role.APPROVER, Role.ADMIN)),
    "compensation.read_fund": _can_read_fund,
    "compensation.read_claim": lambda u, claim: (
        _is_operator(u) or claim.bank_org_id == u.org_id),
    "compensation.file": lambda u, _=None: _is_bank_officer(u),
    "compensation.claim": lambda u, loan: _is_bank_officer(u) and loan.bank_org_id == u.org_id,
    "compensation.withdraw": lambda u, claim: (
        _is_bank_officer(u) and claim.bank_org_id == u.org_id),
    "collateral.release": lambda u, enc: (
        u.organisation.kind is OrgKind.BANK and enc.holder_org_id == u.org_id
        and u.has_role(Role.APPROVER)),
    # oversight: an alert is seen by the platform, the organisation it is about and the
    # other party named (the lending bank); the platform's staff and that party handle it
    "oversight.read_alert": lambda u, alert: (
        _is_operator(u) or u.org_id in (alert.subject_org_id, alert.party_org_id)),
    "oversight.handle_alert": lambda u, alert: (
        u.has_role(Role.OFFICER, Role.APPROVER, Role.ADMIN)
        and (_is_operator(u) or (alert.party_org_id is not None
                                 and alert.party_org_id == u.org_id))),
    "oversight.configure": lambda u, _=None: (
        _is_operator(u) and u.has_role(Role.APPROVER, Role.ADMIN)),
    "oversight.read_rating": _can_read_rating,
    "audit.read": lambda u, event: _is_operator(u) or event.org_id == u.org_id,
    # statistics: figures over every organisation's records, so the operator's alone
    "statistics.read": lambda u, _=None: (
        u.organisation.kind is OrgKind.PLATFORM_OPERATOR
        and u.organisation.filing_status is FilingStatus.APPROVED),
}


def _user_ok(user: Any) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.is_active)


def can(user: Any, action: str, obj: Any = None) -> bool:
    return _user_ok(user) and RULES[action](user, obj)


def require(user: Any, action: str, obj: Any = None, *, hide: bool = True) -> None:
    """Raise unless ``user`` may do ``action`` to ``obj``.

    With ``hide`` (the default for reads of other organisations' objects) the refusal is a
    404, so asking for another organisation's object by id reveals nothing about it.
    """
    if can(user, action, obj):
        return
    if hide and obj is not None and _owner_org_id(obj) != getattr(user, "org_id", None):
        # Worded like a missing id ("No user with that id."), so existence does not show.
        raise NotFound(type(obj).__name__.lower(), getattr(obj, "id", None))
    raise Forbidden()


def _owner_org_id(obj: Any) -> int | None:
    """The organisation an object belongs to; an organisation belongs to itself."""
    for attribute in ("org_id", "filer_org_id", "seller_org_id", "payer_org_id"):
        if hasattr(obj, attribute):
            return getattr(obj, attribute)
    if type(obj).__name__ == "Organisation":
        return getattr(obj, "id", None)
    return None   # no single owner (a ledger transaction): always hidden as missing


def require_approved(user: Any) -> None:
    if user.organisation.filing_status is not FilingStatus.APPROVED:
        raise FilingNotApproved(filing_block_message(user.organisation))


def kinds_and_roles(policy: Policy) -> tuple[Iterable[OrgKind], Iterable[Role]]:
    return sorted(policy.kinds), sorted(policy.roles)
