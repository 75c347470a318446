"""The authorisation matrix: every route of the app, every method, every kind of user.

Each endpoint's expected audience is written down here, by hand, in ``EXPECTED``: a wrong
``@authz.allow(...)`` declaration is caught by comparing it with this table, not copied
from it.  Then every route is requested over HTTP (HTML through the real sign-in form, the
API with bearer tokens) by an anonymous visitor, a user with each role in an approved
organisation of each kind, and admins of a pending, a rejected and a suspended SME, and
what the app answers is compared with the table.

Adding an endpoint means adding a line to ``EXPECTED``; the tests below say so.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import parse_qs, urlsplit

import pytest
from flask_login import AnonymousUserMixin
from sqlalchemy import update

from finance_app.accounts import services  # before authz: authz <-> accounts import cycle
from finance_app import authz  # noqa: I001
from finance_app.accounts.models import Organisation, User, UserRole
from finance_app.accounts.states import FilingStatus, OrgKind, Role
from finance_app.extensions import db
from tests.conftest import sign_in
from tests.factories import OrganisationFactory, UserFactory

# --------------------------------------------------------------------------- expectations


@dataclass(frozen=True)
class Who:
    """Who may use an endpoint: ``None`` kinds means anyone, signed in or not."""
    kinds: Mapping[str, frozenset[str]] | None
    any_filing: bool = False  # True: the organisation's filing status does not matter

    def admits(self, kind: str | None, role: str | None, status: str | None) -> bool:
        if self.kinds is None:
            return True
        if kind is None:
            return False
        return role in self.kinds.get(kind, ()) and (self.any_filing or status == "approved")

    def refusal_code(self, kind: str, role: str) -> str:
        """Why a signed-in user is refused: the kind/role, or only the filing status."""
        if role in self.kinds.get(kind, ()):
            return "filing_not_approved"
        return "forbidden"


KINDS = ("sme", "bank", "insurer", "warehouse_operator", "logistics", "payment_institution",
         "platform_operator")
ROLES = frozenset({"admin", "officer", "approver"})


def _every_kind(roles) -> dict[str, frozenset[str]]:
    return {kind: frozenset(roles) for kind in KINDS}


ANYONE = Who(None)
SIGNED_IN = Who(_every_kind(ROLES), any_filing=True)
ANY_ADMIN = Who(_every_kind({"admin"}), any_filing=True)
ORG_ADMIN = Who(_every_kind({"admin"}))
DIRECTORY = Who({"bank": ROLES, "insurer": ROLES, "platform_operator": ROLES})
OPERATOR = Who({"platform_operator": ROLES})
OPERATOR_DECIDER = Who({"platform_operator": frozenset({"approver", "admin"})})
STATISTICS = Who({"platform_operator": ROLES})
# Trade evidence: who files documents (SMEs, logistics companies, payment institutions) and
# the operator read what they filed; their admins and officers file; orders are the SMEs'.
TRADE = Who({"sme": ROLES, "logistics": ROLES, "payment_institution": ROLES,
             "platform_operator": ROLES})
TRADE_FILER = Who({kind: frozenset({"admin", "officer"})
                   for kind in ("sme", "logistics", "payment_institution", "platform_operator")})
TRADE_ORDERS = Who({"sme": ROLES, "platform_operator": ROLES})
# Money: every approved organisation has accounts and payments; the object rules decide
# which ones it sees and what it may do to them.
MEMBER = Who(_every_kind(ROLES))
# Warehouse receipts: the parties (operators, SMEs, banks) and the platform; operators'
# officers and approvers run the warehouse.
WAREHOUSE = Who({"warehouse_operator": ROLES, "sme": ROLES, "bank": ROLES,
                 "platform_operator": ROLES})
WAREHOUSE_STAFF = Who({"warehouse_operator": frozenset({"officer", "approver"})})
# Financing: SMEs, banks and the platform operator; SMEs' staff request, accept and repay;
# banks publish products, review and lend. The object rules decide which objects.
FINANCING = Who({"sme": ROLES, "bank": ROLES, "platform_operator": ROLES})
FINANCING_SME = Who({"sme": ROLES})
FINANCING_BANK = Who({"bank": ROLES})
# Export credit insurance: insurers, the SMEs they insure, banks indemnities are assigned to,
# and the platform read; insurers' officers and approvers underwrite and decide; SMEs'
# officers and approvers apply, declare and assign; either of them, or a bank, acts on a
# record it is party to (the object rules decide which).
DECIDERS = frozenset({"officer", "approver"})
INSURANCE = Who({"insurer": ROLES, "sme": ROLES, "bank": ROLES, "platform_operator": ROLES})
INSURANCE_STAFF = Who({"insurer": DECIDERS})
INSURANCE_INSURED = Who({"sme": DECIDERS})
INSURANCE_PARTY = Who({"insurer": DECIDERS, "sme": DECIDERS, "bank": DECIDERS})
# The risk compensation fund: banks and the platform read; the operator's approvers and
# admins run funds and decide claims; banks' officers and approvers claim and withdraw.
COMPENSATION = Who({"bank": ROLES, "platform_operator": ROLES})
COMPENSATION_BANK = Who({"bank": DECIDERS})

# endpoint -> Who, or {METHOD: Who} when methods differ.  Keep it in step with the routes.
EXPECTED: dict[str, Who | dict[str, Who]] = {
    "static": ANYONE,
    "api-docs.openapi_json": ANYONE,
    # main
    "main.index": ANYONE,
    "main.health": ANYONE,
    "main.set_language": ANYONE,
    "main.dashboard": SIGNED_IN,
    "main.notices_read": SIGNED_IN,
    # signing up and in
    "accounts.signup": ANYONE,
    "accounts.signin": ANYONE,
    "accounts.second_factor": ANYONE,
    "accounts.signout": SIGNED_IN,
    # one's own security settings: whatever the filing status
    "accounts.security": SIGNED_IN,
    "accounts.change_password": SIGNED_IN,
    "accounts.signout_everywhere": SIGNED_IN,
    "accounts.totp_setup": SIGNED_IN,
    "accounts.totp_disable": SIGNED_IN,
    "accounts.recovery_codes": SIGNED_IN,
    # the organisation's own profile; its admin corrects a pending or rejected filing
    "accounts.organisation": SIGNED_IN,
    "accounts.edit_filing": ANY_ADMIN,
    # "file once, shared by all": banks, insurers and the operator read the directory
    "accounts.directory": DIRECTORY,
    "accounts.directory_detail": DIRECTORY,
    # users and tokens: admins of approved organisations
    "accounts.users": ORG_ADMIN,
    "accounts.user_new": ORG_ADMIN,
    "accounts.user_detail": ORG_ADMIN,
    "accounts.user_deactivate": ORG_ADMIN,
    "accounts.user_reactivate": ORG_ADMIN,
    "accounts.user_unlock": ORG_ADMIN,
    "accounts.tokens": ORG_ADMIN,
    "accounts.token_revoke": ORG_ADMIN,
    # the operator's filing queue; only approvers and admins decide
    "admin.filings": OPERATOR,
    "admin.filing_detail": OPERATOR,
    "admin.filing_decide": OPERATOR_DECIDER,
    "audit.events": MEMBER,
    "audit.verify": OPERATOR,
    # trade evidence
    "trade.orders": TRADE_ORDERS,
    "trade.order_detail": TRADE_ORDERS,
    "trade.receivables": TRADE_ORDERS,
    "trade.upload": TRADE_FILER,
    "trade.new_document": TRADE_FILER,
    "trade.documents": TRADE,
    "trade.batches": TRADE,
    "trade.batch_detail": TRADE,
    # the ledger and payments (the webhook is Stripe's: its signature is its credential)
    "ledger.accounts": MEMBER,
    "ledger.account_detail": MEMBER,
    "ledger.statement_pdf": MEMBER,
    "ledger.transactions": MEMBER,
    "ledger.transaction_detail": MEMBER,
    "ledger.rates_list": MEMBER,
    "ledger.enter_rate": OPERATOR_DECIDER,
    "settlement.records": MEMBER,
    "settlement.record_detail": MEMBER,
    "settlement.confirm": MEMBER,
    "settlement.cancel": MEMBER,
    "settlement.remit": OPERATOR_DECIDER,
    "settlement.start_card": MEMBER,
    "settlement.card": MEMBER,
    "settlement.card_pay": MEMBER,
    "settlement.card_refresh": MEMBER,
    "settlement.new_fee": OPERATOR,
    "settlement.reconciliation": OPERATOR,
    "stripe_webhook.stripe_webhook": ANYONE,
    # warehouse receipts; anyone verifies a receipt's code
    "warehouse.receipts": WAREHOUSE,
    "warehouse.receipt_detail": WAREHOUSE,
    "warehouse.offer": WAREHOUSE,
    "warehouse.pledge": WAREHOUSE,
    "warehouse.release": WAREHOUSE,
    "warehouse.release_part": WAREHOUSE,
    "warehouse.principal": WAREHOUSE,
    "warehouse.certificate": WAREHOUSE,
    "warehouse.warehouses": WAREHOUSE,
    "warehouse.register_warehouse": WAREHOUSE_STAFF,
    "warehouse.prices": WAREHOUSE,
    "warehouse.split": WAREHOUSE_STAFF,
    "warehouse.deliver": WAREHOUSE_STAFF,
    "warehouse.cancel": WAREHOUSE_STAFF,
    "warehouse.new_receipt": WAREHOUSE_STAFF,
    "warehouse.enter_price": OPERATOR_DECIDER,
    "warehouse.upload_prices": OPERATOR_DECIDER,
    "warehouse.set_haircut": OPERATOR_DECIDER,
    "verify.verify_page": ANYONE,
    # financing pages: the SME's marketplace and actions, the bank's review and lending,
    # everyone's (the operator's too) lists and details
    "financing.marketplace": FINANCING_SME,
    "financing.new_request": FINANCING_SME,
    "financing.requests": FINANCING,
    "financing.request_detail": FINANCING,
    "financing.withdraw_request": FINANCING_SME,
    "financing.accept_offer": FINANCING_SME,
    "financing.loans": FINANCING,
    "financing.loan_detail": FINANCING,
    "financing.repay": FINANCING_SME,
    "financing.disburse": FINANCING_BANK,
    "financing.cancel_loan": FINANCING_BANK,
    "financing.contract": FINANCING,
    "financing.products": FINANCING,
    "financing.new_product": FINANCING_BANK,
    "financing.product_status": FINANCING_BANK,
    "financing.facilities": FINANCING,
    "financing.grant_facility": FINANCING_BANK,
    "financing.review_queue": FINANCING_BANK,
    "financing.evidence": FINANCING_BANK,
    "financing.prepare_offer": FINANCING_BANK,
    "financing.prepare_rejection": FINANCING_BANK,
    "financing.approve_decision": FINANCING_BANK,
    "financing.withdraw_decision": FINANCING_BANK,
    # export credit insurance
    "insurance.index": INSURANCE,
    "insurance.policy_new": INSURANCE_STAFF,
    "insurance.policy_detail": INSURANCE,
    "insurance.policy_document": INSURANCE,
    "insurance.policy_cancel": INSURANCE_STAFF,
    "insurance.limit_apply": INSURANCE_INSURED,
    "insurance.limit_detail": INSURANCE,
    "insurance.limit_decide": INSURANCE_PARTY,
    "insurance.declare": INSURANCE_INSURED,
    "insurance.declaration_detail": INSURANCE,
    "insurance.declaration_act": INSURANCE_PARTY,
    "insurance.claim_file": INSURANCE_PARTY,
    "insurance.assign": INSURANCE_INSURED,
    "insurance.assignment_decide": INSURANCE_PARTY,
    "insurance.claim_detail": INSURANCE,
    "insurance.claim_decide": INSURANCE_PARTY,
    "insurance.recovery": INSURANCE_PARTY,
    # the risk compensation fund
    "compensation.index": COMPENSATION,
    "compensation.fund_new": OPERATOR_DECIDER,
    "compensation.fund_detail": COMPENSATION,
    "compensation.fund_top_up": OPERATOR_DECIDER,
    "compensation.fund_act": OPERATOR_DECIDER,
    "compensation.claim_file": COMPENSATION_BANK,
    "compensation.claim_detail": COMPENSATION,
    "compensation.claim_decide": OPERATOR_DECIDER,
    "compensation.claim_withdraw": COMPENSATION_BANK,
    # API
    "accounts_api.Me": SIGNED_IN,
    "accounts_api.Organisations": DIRECTORY,
    "accounts_api.OrganisationDetail": SIGNED_IN,  # the object rule decides which ids
    "accounts_api.Users": {"GET": ORG_ADMIN, "POST": ORG_ADMIN},
    "accounts_api.UserDetail": ORG_ADMIN,
    "accounts_api.UserRoles": ORG_ADMIN,
    "accounts_api.UserDeactivate": ORG_ADMIN,
    "accounts_api.Filings": OPERATOR,
    "accounts_api.FilingDecision": OPERATOR_DECIDER,
    "audit_api.Events": MEMBER,
    "audit_api.Verify": OPERATOR,
    "trade_api.Orders": TRADE_ORDERS,
    "trade_api.OrderDetail": TRADE_ORDERS,
    "trade_api.Payments": TRADE,
    "trade_api.PaymentDetail": TRADE,
    "trade_api.Waybills": TRADE,
    "trade_api.WaybillDetail": TRADE,
    "trade_api.Inventories": TRADE,
    "trade_api.InventoryDetail": TRADE,
    "trade_api.Documents": TRADE_FILER,
    "trade_api.Ceb": TRADE_FILER,
    "trade_api.Verdicts": TRADE_ORDERS,
    "trade_api.Receivables": TRADE_ORDERS,
    "ledger_api.Accounts": MEMBER,
    "ledger_api.AccountDetail": MEMBER,
    "ledger_api.AccountBalance": MEMBER,
    "ledger_api.AccountEntries": MEMBER,
    "ledger_api.Transactions": MEMBER,
    "ledger_api.TransactionDetail": MEMBER,
    "ledger_api.Rates": {"GET": MEMBER, "POST": OPERATOR_DECIDER},
    "ledger_api.RateLookup": MEMBER,
    "settlement_api.Records": MEMBER,
    "settlement_api.RecordDetail": MEMBER,
    "settlement_api.Confirm": MEMBER,
    "settlement_api.Cancel": MEMBER,
    "settlement_api.CardStart": MEMBER,
    "settlement_api.CardPay": MEMBER,
    "settlement_api.Remit": OPERATOR_DECIDER,
    "settlement_api.Fees": OPERATOR,
    "settlement_api.Reconciliation": OPERATOR,
    "warehouse_api.Warehouses": {"GET": WAREHOUSE, "POST": WAREHOUSE_STAFF},
    "warehouse_api.Receipts": {"GET": WAREHOUSE, "POST": WAREHOUSE_STAFF},
    "warehouse_api.ReceiptDetail": WAREHOUSE,
    "warehouse_api.Offers": WAREHOUSE,
    "warehouse_api.Pledge": WAREHOUSE,
    "warehouse_api.Release": WAREHOUSE,
    "warehouse_api.PartialRelease": WAREHOUSE,
    "warehouse_api.Principal": WAREHOUSE,
    "warehouse_api.Split": WAREHOUSE_STAFF,
    "warehouse_api.Deliver": WAREHOUSE_STAFF,
    "warehouse_api.Cancel": WAREHOUSE_STAFF,
    "warehouse_api.MarginCalls": WAREHOUSE,
    "warehouse_api.Prices": OPERATOR_DECIDER,
    "warehouse_api.PricesCsv": OPERATOR_DECIDER,
    "financing_api.Products": {"GET": FINANCING, "POST": FINANCING_BANK},
    "financing_api.ProductDetail": FINANCING,
    "financing_api.ProductPause": FINANCING_BANK,
    "financing_api.ProductResume": FINANCING_BANK,
    "financing_api.Facilities": {"GET": FINANCING, "POST": FINANCING_BANK},
    "financing_api.Marketplace": FINANCING_SME,
    "financing_api.Requests": {"GET": FINANCING, "POST": FINANCING_SME},
    "financing_api.RequestDetail": FINANCING,
    "financing_api.RequestWithdraw": FINANCING_SME,
    "financing_api.OfferAccept": FINANCING_SME,
    "financing_api.Review": FINANCING_BANK,
    "financing_api.ReviewDetail": FINANCING_BANK,
    "financing_api.ReviewOffer": FINANCING_BANK,
    "financing_api.ReviewRejection": FINANCING_BANK,
    "financing_api.DecisionApprove": FINANCING_BANK,
    "financing_api.DecisionWithdraw": FINANCING_BANK,
    "financing_api.Loans": FINANCING,
    "financing_api.LoanDetail": FINANCING,
    "financing_api.LoanDisburse": FINANCING_BANK,
    "financing_api.LoanCancel": FINANCING,
    "financing_api.LoanRepayments": FINANCING_SME,
    "financing_api.LoanContract": FINANCING,
    "financing_api.LoanContractPdf": FINANCING,
    "insurance_api.Policies": {"GET": INSURANCE, "POST": INSURANCE_STAFF},
    "insurance_api.PolicyDetail": INSURANCE,
    "insurance_api.PolicyCancel": INSURANCE_STAFF,
    "insurance_api.PolicyLimits": INSURANCE_INSURED,
    "insurance_api.Limits": INSURANCE,
    "insurance_api.LimitDetail": INSURANCE,
    "insurance_api.LimitDecision": INSURANCE_PARTY,
    "insurance_api.Declarations": {"GET": INSURANCE, "POST": INSURANCE_INSURED},
    "insurance_api.DeclarationDetail": INSURANCE,
    "insurance_api.DeclarationAction": INSURANCE_PARTY,
    "insurance_api.DeclarationClaims": INSURANCE_PARTY,
    "insurance_api.DeclarationAssignments": INSURANCE_INSURED,
    "insurance_api.DeclarationCover": INSURANCE,
    "insurance_api.AssignedCover": INSURANCE,
    "insurance_api.Claims": INSURANCE,
    "insurance_api.ClaimDetail": INSURANCE,
    # oversight: alerts for every member (the object rules scope them), thresholds for the
    # platform (its approvers change them), ratings for members (the rule decides whose)
    "oversight.alerts": MEMBER,
    "oversight.alert_detail": MEMBER,
    "oversight.acknowledge": MEMBER,
    "oversight.resolve": MEMBER,
    "oversight.thresholds": OPERATOR,
    "oversight.save_thresholds": OPERATOR_DECIDER,
    "oversight.my_rating": MEMBER,
    "oversight.ratings_list": OPERATOR,
    "oversight.rating_detail": MEMBER,
    "oversight.recompute": OPERATOR_DECIDER,
    "oversight_api.Alerts": MEMBER,
    "oversight_api.AlertDetail": MEMBER,
    "oversight_api.AlertAcknowledge": MEMBER,
    "oversight_api.AlertResolve": MEMBER,
    "oversight_api.Thresholds": {"GET": OPERATOR, "POST": OPERATOR_DECIDER},
    "oversight_api.Rating": MEMBER,
    "oversight_api.RatingHistory": MEMBER,
    "insurance_api.ClaimDecision": INSURANCE_PARTY,
    "insurance_api.ClaimRecoveries": INSURANCE_PARTY,
    "insurance_api.Assignments": INSURANCE,
    "insurance_api.AssignmentDecision": INSURANCE_PARTY,
    "compensation_api.Funds": {"GET": COMPENSATION, "POST": OPERATOR_DECIDER},
    "compensation_api.FundDetail": COMPENSATION,
    "compensation_api.FundTopUps": OPERATOR_DECIDER,
    "compensation_api.FundAction": OPERATOR_DECIDER,
    "compensation_api.Claims": {"GET": COMPENSATION, "POST": COMPENSATION_BANK},
    "compensation_api.ClaimDetail": COMPENSATION,
    "compensation_api.ClaimDecision": OPERATOR_DECIDER,
    "compensation_api.ClaimWithdrawal": COMPENSATION_BANK,
    # statistics monitoring: the platform operator's dashboard, its exports and its API;
    # the charting library it loads is a public file
    "statistics.dashboard": STATISTICS,
    "statistics.export_csv": STATISTICS,
    "statistics.export_xlsx": STATISTICS,
    "statistics.plotly_js": ANYONE,
    "statistics_api.Statistics": STATISTICS,
}


def expected_who(endpoint: str, method: str) -> Who | None:
    entry = EXPECTED.get(endpoint)
    if isinstance(entry, dict):
        return entry.get(method)
    return entry


# --------------------------------------------------------------------------- the routes

SKIPPED_METHODS = {"HEAD", "OPTIONS"}
_CONVERTER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def routes(app) -> list[tuple[str, str, str]]:
    """(endpoint, method, rule) for every rule and method, GETs first."""
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - SKIPPED_METHODS):
            found.append((rule.endpoint, method, rule.rule))
    return sorted(found, key=lambda r: (r[1] != "GET", r[2], r[1]))


def declared_policy(app, endpoint: str, method: str, rule: str) -> authz.Policy | None:
    with app.test_request_context(rule, method=method):
        return authz.policy_for(endpoint)


def build_path(rule: str, ids: Mapping[str, object]) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        assert name in ids, (
            f"The route {rule} takes <{name}>: give the matrix a real id for it in _world().")
        return str(ids[name])
    return _CONVERTER.sub(value, rule)


# --------------------------------------------------------------------------- kinds of user


@dataclass(frozen=True)
class UserType:
    kind: OrgKind | None  # None: anonymous
    role: Role | None = None
    status: FilingStatus = FilingStatus.APPROVED

    @property
    def anonymous(self) -> bool:
        return self.kind is None

    def __str__(self) -> str:
        if self.anonymous:
            return "anonymous"
        suffix = "" if self.status is FilingStatus.APPROVED else f"-{self.status.value}"
        return f"{self.kind.value}-{self.role.value}{suffix}"


USER_TYPES = ([UserType(None)]
              + [UserType(kind, role) for kind in OrgKind for role in Role]
              + [UserType(OrgKind.SME, Role.ADMIN, status)
                 for status in (FilingStatus.PENDING, FilingStatus.REJECTED,
                                FilingStatus.SUSPENDED)])

REASONS = {FilingStatus.REJECTED: "Business licence unreadable",
           FilingStatus.SUSPENDED: "Under investigation"}


def expected_outcome(who: Who, user_type: UserType, is_api: bool) -> str:
    kind = user_type.kind and user_type.kind.value
    role = user_type.role and user_type.role.value
    if who.admits(kind, role, user_type.status.value):
        return "allowed"
    if user_type.anonymous:
        return "401 unauthenticated" if is_api else "sign-in redirect"
    return f"403 {who.refusal_code(kind, role)}"


def actual_outcome(response, path: str) -> str:
    status = response.status_code
    if status >= 500:
        return f"{status} server error"
    if 300 <= status < 400:
        location = urlsplit(response.headers.get("Location", ""))
        if location.path == "/signin" and parse_qs(location.query).get("next") == [path]:
            return "sign-in redirect"
        if location.path == "/account/second-factor" and path != "/account/second-factor":
            return "second-factor enrolment redirect"
        return "allowed"
    if status in (401, 403):
        return f"{status} {error_code(response)}"
    return "allowed"


def error_code(response) -> str:
    if response.is_json:
        return (response.get_json() or {}).get("error", {}).get("code", "?")
    match = re.search(r'data-code="([^"]*)"', response.get_data(as_text=True))
    return match.group(1) if match else "?"


def transient_user(user_type: UserType):
    """An unsaved user of this type, to ask a Policy about."""
    if user_type.anonymous:
        return AnonymousUserMixin()
    org = Organisation(kind=user_type.kind, filing_status=user_type.status)
    return User(organisation=org, active=True, role_rows=[UserRole(role=user_type.role)])


# --------------------------------------------------------------------------- static checks


def test_every_endpoint_declares_a_policy(app):
    missing = [f"{method} {rule} ({endpoint})" for endpoint, method, rule in routes(app)
               if declared_policy(app, endpoint, method, rule) is None]
    assert not missing, ("These routes declare no @authz.allow(...) policy, so every request "
                         "to them is refused:\n  " + "\n  ".join(missing))


def test_expectation_table_covers_every_endpoint(app):
    missing = sorted({f"{endpoint} ({method} {rule})" for endpoint, method, rule in routes(app)
                      if expected_who(endpoint, method) is None})
    assert not missing, (
        "Add who may use these endpoints to EXPECTED in tests/test_authz_matrix.py:\n  "
        + "\n  ".join(missing))
    stale = sorted(set(EXPECTED) - set(app.view_functions))
    assert not stale, f"EXPECTED names endpoints that no longer exist: {stale}"


def test_declared_policies_match_the_table(app):
    users = {str(t): (t, transient_user(t)) for t in USER_TYPES}
    wrong = []
    for endpoint, method, rule in routes(app):
        policy = declared_policy(app, endpoint, method, rule)
        who = expected_who(endpoint, method)
        if policy is None or who is None:
            continue  # reported by the two tests above
        for name, (user_type, user) in users.items():
            expected = who.admits(user_type.kind and user_type.kind.value,
                                  user_type.role and user_type.role.value,
                                  user_type.status.value)
            if policy.admits(user) is not expected:
                wrong.append(f"{method} {rule} ({endpoint}, policy '{policy.name}'): "
                             f"{name} {'should' if expected else 'should not'} be let in")
    assert not wrong, "Declared policies disagree with EXPECTED:\n  " + "\n  ".join(wrong)


def test_a_view_without_a_policy_is_refused_to_everyone(app, client):
    """Deny by default: a view that lost its @allow is closed, even to the operator."""
    operator = UserFactory(organisation=OrganisationFactory(kind=OrgKind.PLATFORM_OPERATOR),
                           roles=[Role.ADMIN])
    _token, raw = services.create_token(actor=operator, name="t")
    db.session.commit()
    sign_in(client, operator)
    originals = {name: app.view_functions[name] for name in ("main.health", "accounts_api.Me")}
    try:
        for name, view in originals.items():
            app.view_functions[name] = lambda *a, _view=view, **kw: _view(*a, **kw)
        page = client.get("/health")
        anonymous = app.test_client().get("/health")
        api = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"})
    finally:
        app.view_functions.update(originals)
    assert page.status_code == 403 and error_code(page) == "no_policy"
    assert anonymous.status_code == 403 and error_code(anonymous) == "no_policy"
    assert api.status_code == 403 and error_code(api) == "no_policy"
    # and with the declaration back, the same requests go through
    assert client.get("/health").status_code == 200
    assert app.test_client().get(
        "/api/v1/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 200


# --------------------------------------------------------------------------- over HTTP


def _world(user_type: UserType) -> tuple[User, dict[str, object], str]:
    """The user, ids for every URL converter (objects of the user's own organisation, so an
    allowed request reaches a real object), and an API token for the user."""
    kind = user_type.kind or OrgKind.SME
    # Tokens are issued while the organisation is approved (an unapproved one cannot get
    # any); its filing status is then set, so the matrix sees what such a token may do.
    org = OrganisationFactory(kind=kind, filing_status=FilingStatus.APPROVED)
    user = UserFactory(organisation=org, roles=[user_type.role or Role.ADMIN])
    colleague = UserFactory(organisation=org, roles=[Role.OFFICER])
    spare_token, _ = services.create_token(actor=colleague, name="spare")
    _token, raw = services.create_token(actor=user, name="matrix")
    org.filing_status = user_type.status
    org.filing_reason = REASONS.get(user_type.status)
    db.session.commit()
    ids = {"org_id": org.id, "user_id": colleague.id, "token_id": spare_token.id,
           "filename": "app.css", "order_id": 1, "document_id": 1, "batch_id": 1,
           "account_id": 1, "transaction_id": 1, "record_id": 1, "receipt_id": 1,
           "product_id": 1, "request_id": 1, "decision_id": 1, "target_id": 1, "loan_id": 1,
           "policy_id": 1, "limit_id": 1, "declaration_id": 1, "claim_id": 1,
           "assignment_id": 1, "alert_id": 1, "fund_id": 1}
    return user, ids, raw


def _sign_in_again(client, user: User) -> None:
    # A TOTP code is accepted once per time step; the matrix signs in more than once a step.
    db.session.execute(update(User).where(User.id == user.id).values(totp_last_step=None))
    db.session.commit()
    sign_in(client, user)


@pytest.mark.parametrize("user_type", USER_TYPES, ids=str)
def test_every_route_answers_as_the_table_says(app, make_client, user_type):
    user, ids, raw_token = _world(user_type)
    page_client, api_client = make_client(), make_client()
    api_headers = {} if user_type.anonymous else {"Authorization": f"Bearer {raw_token}"}
    if not user_type.anonymous:
        sign_in(page_client, user)
        declared_user = db.session.get(User, user.id)
    else:
        declared_user = AnonymousUserMixin()

    failures = []
    checked = 0
    for endpoint, method, rule in routes(app):
        who = expected_who(endpoint, method)
        if who is None:
            failures.append(f"{method} {rule}: no entry for {endpoint} in EXPECTED")
            continue
        policy = declared_policy(app, endpoint, method, rule)
        path = build_path(rule, ids)
        is_api = path.startswith("/api/")
        expected = expected_outcome(who, user_type, is_api)

        declared = "no policy" if policy is None else (
            "allowed" if policy.admits(declared_user) else "refused")
        if declared != ("allowed" if expected == "allowed" else "refused"):
            failures.append(f"{method} {path} ({endpoint}): declared policy "
                            f"'{getattr(policy, 'name', None)}' says {declared}, "
                            f"the table says {expected}")

        body = {} if method != "GET" else None
        try:
            if is_api:
                response = api_client.open(path, method=method, json=body, headers=api_headers)
            else:
                response = page_client.open(path, method=method, data=body)
        except Exception as exc:  # noqa: BLE001 - a crash is a finding, listed with the rest
            db.session.rollback()
            failures.append(f"{method} {path} ({endpoint}): raised {exc!r}")
            continue
        checked += 1
        actual = actual_outcome(response, path)
        if actual != expected:
            failures.append(f"{method} {path} ({endpoint}): expected {expected}, got {actual} "
                            f"(HTTP {response.status_code})")
        if (not user_type.anonymous and not is_api and response.status_code in (302, 303)
                and urlsplit(response.headers["Location"]).path == "/signin"):
            _sign_in_again(page_client, user)  # e.g. POST /signout ended the session

    assert checked >= len(EXPECTED)
    assert not failures, f"{user_type}:\n  " + "\n  ".join(failures)


def test_the_policy_is_checked_before_an_idempotent_replay(app, make_client):
    """A colleague without the admin role who resends an admin's request with the same
    Idempotency-Key is refused; the admin's stored answer is not replayed to them."""
    admin = UserFactory(roles=[Role.ADMIN])
    officer = UserFactory(organisation=admin.organisation, roles=[Role.OFFICER])
    _t, admin_raw = services.create_token(actor=admin, name="admin")
    _t, officer_raw = services.create_token(actor=officer, name="officer")
    db.session.commit()
    body = {"email": "third@example.test", "name": "Third", "roles": ["admin"],
            "password": "correct-horse-battery-staple-7"}

    def post(raw):
        return make_client().post("/api/v1/users", json=body, headers={
            "Authorization": f"Bearer {raw}", "Idempotency-Key": "add-third"})

    first = post(admin_raw)
    assert first.status_code == 201, first.get_json()
    again = post(officer_raw)
    assert again.status_code == 403 and error_code(again) == "forbidden"
    assert "Idempotent-Replayed" not in again.headers
    assert "third@example.test" not in again.get_data(as_text=True)
    replay = post(admin_raw)  # the admin's own retry still replays
    assert replay.status_code == 201 and replay.headers.get("Idempotent-Replayed") == "true"


@pytest.mark.parametrize("user_type", [UserType(None), UserType(OrgKind.SME, Role.OFFICER),
                                       UserType(OrgKind.PLATFORM_OPERATOR, Role.ADMIN)], ids=str)
def test_head_is_judged_like_get(app, make_client, user_type):
    """HEAD (which the matrix above leaves out) gets the same answer as GET, pages and API."""
    user, ids, raw_token = _world(user_type)
    page_client, api_client = make_client(), make_client()
    headers = {} if user_type.anonymous else {"Authorization": f"Bearer {raw_token}"}
    if not user_type.anonymous:
        sign_in(page_client, user)
    differ = []
    for endpoint, method, rule in routes(app):
        if method != "GET":
            continue
        path = build_path(rule, ids)
        client = api_client if path.startswith("/api/") else page_client
        got = client.get(path, headers=headers).status_code
        head = client.head(path, headers=headers).status_code
        if head != got:
            differ.append(f"{path} ({endpoint}): GET {got}, HEAD {head}")
    assert not differ, "\n  ".join(differ)
