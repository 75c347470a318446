"""``authz`` without HTTP or a database: each endpoint Policy and each object rule in RULES,
for every organisation kind x role x filing status, against expectations written out here
independently of the code.  Users are unsaved model instances."""
from __future__ import annotations

import pytest
from flask_login import AnonymousUserMixin

from finance_app.accounts import services  # noqa: F401  (before authz: import cycle)
from finance_app import authz  # noqa: I001
from finance_app.accounts.models import ApiToken, Organisation, User, UserRole
from finance_app.accounts.states import FilingStatus, OrgKind, Role
from finance_app.errors import Forbidden, NotFound

K, R, S = OrgKind, Role, FilingStatus
APPROVED = S.APPROVED
MY_ORG, OTHER_ORG = 7, 8


def org(org_id: int = MY_ORG, kind: OrgKind = K.SME, status: FilingStatus = APPROVED):
    return Organisation(id=org_id, kind=kind, filing_status=status,
                        name=f"Org {org_id}", country="CN")


def user(kind: OrgKind = K.SME, roles=(R.OFFICER,), status: FilingStatus = APPROVED, *,
         org_id: int = MY_ORG, user_id: int = 100, active: bool = True) -> User:
    return User(id=user_id, org_id=org_id, organisation=org(org_id, kind, status),
                active=active, email=f"u{user_id}@example.test",
                role_rows=[UserRole(role=r) for r in roles])


def token(org_id: int, token_id: int = 55) -> ApiToken:
    return ApiToken(id=token_id, org_id=org_id, user_id=1, name="erp", prefix="sfp_x")


COMBINATIONS = [(kind, role, status) for kind in OrgKind for role in Role for status in S]
IDS = [f"{k.value}-{r.value}-{s.value}" for k, r, s in COMBINATIONS]

# --------------------------------------------------------------------------- policies

DIRECTORY_KINDS = {K.BANK, K.INSURER, K.PLATFORM_OPERATOR}
TRADE_KINDS = {K.SME, K.LOGISTICS, K.PAYMENT_INSTITUTION, K.PLATFORM_OPERATOR}
POLICY_EXPECTATIONS = {
    "public": lambda k, r, s: True,
    "signed_in": lambda k, r, s: True,
    "filing_admin": lambda k, r, s: r is R.ADMIN,
    "member": lambda k, r, s: s is APPROVED,
    "org_admin": lambda k, r, s: r is R.ADMIN and s is APPROVED,
    "directory": lambda k, r, s: k in DIRECTORY_KINDS and s is APPROVED,
    "operator": lambda k, r, s: k is K.PLATFORM_OPERATOR and s is APPROVED,
    "operator_decider": lambda k, r, s: (k is K.PLATFORM_OPERATOR and r in {R.APPROVER, R.ADMIN}
                                         and s is APPROVED),
    "trade": lambda k, r, s: k in TRADE_KINDS and s is APPROVED,
    "trade_filer": lambda k, r, s: k in TRADE_KINDS and r in {R.ADMIN, R.OFFICER} and s is APPROVED,
    "trade_orders": lambda k, r, s: k in {K.SME, K.PLATFORM_OPERATOR} and s is APPROVED,
    "warehouse": lambda k, r, s: (k in {K.WAREHOUSE_OPERATOR, K.SME, K.BANK, K.PLATFORM_OPERATOR}
                                  and s is APPROVED),
    "warehouse_staff": lambda k, r, s: (k is K.WAREHOUSE_OPERATOR and r in {R.OFFICER, R.APPROVER}
                                        and s is APPROVED),
    "financing": lambda k, r, s: k in {K.SME, K.BANK, K.PLATFORM_OPERATOR} and s is APPROVED,
    "financing_sme": lambda k, r, s: k is K.SME and s is APPROVED,
    "financing_bank": lambda k, r, s: k is K.BANK and s is APPROVED,
    "insurance": lambda k, r, s: (k in {K.INSURER, K.SME, K.BANK, K.PLATFORM_OPERATOR}
                                  and s is APPROVED),
    "insurance_staff": lambda k, r, s: (k is K.INSURER and r in {R.OFFICER, R.APPROVER}
                                        and s is APPROVED),
    "insurance_insured": lambda k, r, s: (k is K.SME and r in {R.OFFICER, R.APPROVER}
                                          and s is APPROVED),
    "insurance_party": lambda k, r, s: (k in {K.INSURER, K.SME, K.BANK}
                                        and r in {R.OFFICER, R.APPROVER} and s is APPROVED),
    "compensation": lambda k, r, s: k in {K.BANK, K.PLATFORM_OPERATOR} and s is APPROVED,
    "compensation_bank": lambda k, r, s: (k is K.BANK and r in {R.OFFICER, R.APPROVER}
                                          and s is APPROVED),
    "statistics": lambda k, r, s: k is K.PLATFORM_OPERATOR and s is APPROVED,
}


def test_trade_filers_are_the_kinds_that_file_documents():
    """Who may upload mirrors who files each kind of document, plus the operator."""
    from finance_app.trade.services import FILER_KINDS
    filers = set().union(*FILER_KINDS.values()) | {K.PLATFORM_OPERATOR}
    assert authz.TRADE_FILER.kinds == filers == authz.TRADE.kinds


def test_every_policy_has_expectations_here():
    assert set(authz.POLICIES) == set(POLICY_EXPECTATIONS), (
        "Write down who each new Policy admits in POLICY_EXPECTATIONS")


@pytest.mark.parametrize("kind,role,status", COMBINATIONS, ids=IDS)
def test_policy_admits(kind, role, status):
    someone = user(kind, [role], status)
    wrong = [name for name, policy in authz.POLICIES.items()
             if policy.admits(someone) is not POLICY_EXPECTATIONS[name](kind, role, status)]
    assert not wrong, f"{kind.value} {role.value} ({status.value}) is wrongly judged by {wrong}"


@pytest.mark.parametrize("nobody", [None, AnonymousUserMixin()], ids=["none", "anonymous"])
def test_anonymous_passes_only_the_public_policy(nobody):
    assert {name for name, p in authz.POLICIES.items() if p.admits(nobody)} == {"public"}


def test_a_deactivated_user_passes_only_the_public_policy():
    gone = user(K.PLATFORM_OPERATOR, list(Role), active=False)
    assert {name for name, p in authz.POLICIES.items() if p.admits(gone)} == {"public"}


def test_any_one_of_several_roles_is_enough():
    officer_and_approver = user(K.PLATFORM_OPERATOR, [R.OFFICER, R.APPROVER])
    assert authz.OPERATOR_DECIDER.admits(officer_and_approver)
    assert not authz.ORG_ADMIN.admits(officer_and_approver)


# --------------------------------------------------------------------------- object rules

def expected_read_profile(kind, status, target_is_mine, target_status) -> bool:
    if target_is_mine:
        return True
    if status is not APPROVED:
        return False
    if kind is K.PLATFORM_OPERATOR:
        return True
    return kind in (K.BANK, K.INSURER) and target_status is APPROVED


RULE_EXPECTATIONS = {
    # (actor kind, role, status, is the object in the actor's organisation, extra) -> bool
    "accounts.read_profile": None,  # checked over every target status below
    "accounts.edit_filing": lambda k, r, s, mine: mine and r is R.ADMIN,
    "accounts.decide_filing": lambda k, r, s, mine: (
        not mine and k is K.PLATFORM_OPERATOR and r in (R.APPROVER, R.ADMIN)),
    "accounts.manage_users": lambda k, r, s, mine: mine and r is R.ADMIN,
    "accounts.manage_tokens": lambda k, r, s, mine: mine and r is R.ADMIN,
    "audit.read_all": lambda k, r, s, mine: k is K.PLATFORM_OPERATOR,
    # the operator reads every trade document, upload and receivable; others their own
    "trade.read_document": lambda k, r, s, mine: mine or k is K.PLATFORM_OPERATOR,
    "trade.read_batch": lambda k, r, s, mine: mine or k is K.PLATFORM_OPERATOR,
    "trade.read_receivable": lambda k, r, s, mine: mine or k is K.PLATFORM_OPERATOR,
    # the ledger: an organisation's own accounts; the operator every one
    "ledger.read_account": lambda k, r, s, mine: mine or k is K.PLATFORM_OPERATOR,
    "ledger.read_transaction": None,  # needs the entries: tests/ledger/test_views.py
    # payments: "mine" is the payer's side for read and pay, the payee's for the rest
    "settlement.read": lambda k, r, s, mine: mine or k is K.PLATFORM_OPERATOR,
    "settlement.pay": lambda k, r, s, mine: mine,
    "settlement.confirm": lambda k, r, s, mine: mine and r in (R.OFFICER, R.APPROVER),
    "settlement.cancel": lambda k, r, s, mine: (
        (mine and r in (R.OFFICER, R.APPROVER))
        or (k is K.PLATFORM_OPERATOR and r in (R.APPROVER, R.ADMIN))),
    "settlement.remit": lambda k, r, s, mine: (
        k is K.PLATFORM_OPERATOR and r in (R.APPROVER, R.ADMIN)),
    "settlement.invoice_fee": lambda k, r, s, mine: k is K.PLATFORM_OPERATOR,
    "settlement.reconcile": lambda k, r, s, mine: k is K.PLATFORM_OPERATOR,
    # warehouses: "mine" is the operator's warehouse or receipt, or the depositor's receipt
    "warehouse.register": lambda k, r, s, mine: (
        k is K.WAREHOUSE_OPERATOR and r in (R.OFFICER, R.APPROVER)),
    "warehouse.operate": lambda k, r, s, mine: (
        mine and k is K.WAREHOUSE_OPERATOR and r in (R.OFFICER, R.APPROVER)),
    "warehouse.read_receipt": None,   # offers and pledges need the database: tests/warehouse
    "warehouse.offer": lambda k, r, s, mine: (
        mine and k is K.SME and r in (R.OFFICER, R.APPROVER)),
    "warehouse.pledge": None,         # needs the offer: tests/warehouse
    "warehouse.set_haircut": lambda k, r, s, mine: (
        k is K.PLATFORM_OPERATOR and r in (R.APPROVER, R.ADMIN)),
    # the registry: the holder bank's officers pledge and manage, its approvers release
    "collateral.encumber": lambda k, r, s, mine: (
        mine and k is K.BANK and r in (R.OFFICER, R.APPROVER)),
    "collateral.read": lambda k, r, s, mine: mine or k is K.PLATFORM_OPERATOR,
    "collateral.manage": lambda k, r, s, mine: (
        mine and k is K.BANK and r in (R.OFFICER, R.APPROVER)),
    "collateral.release": lambda k, r, s, mine: mine and k is K.BANK and r is R.APPROVER,
    # financing: "mine" is the bank's product, target, decision or loan, or the SME's
    # request or loan; the operator reads everything and decides nothing
    "financing.read_product": lambda k, r, s, mine: True,      # an active product
    "financing.manage_products": lambda k, r, s, mine: (
        mine and k is K.BANK and r in (R.OFFICER, R.APPROVER)),
    "financing.grant_facility": lambda k, r, s, mine: mine and k is K.BANK and r is R.APPROVER,
    "financing.read_facility": lambda k, r, s, mine: mine or k is K.PLATFORM_OPERATOR,
    "financing.browse": lambda k, r, s, mine: mine and k is K.SME,
    "financing.request": lambda k, r, s, mine: (
        mine and k is K.SME and r in (R.OFFICER, R.APPROVER)),
    "financing.read_request": lambda k, r, s, mine: mine or k is K.PLATFORM_OPERATOR,
    "financing.manage_request": lambda k, r, s, mine: (
        mine and k is K.SME and r in (R.OFFICER, R.APPROVER)),
    "financing.review": lambda k, r, s, mine: (
        (mine and k is K.BANK) or k is K.PLATFORM_OPERATOR),
    "financing.prepare": lambda k, r, s, mine: (
        mine and k is K.BANK and r in (R.OFFICER, R.APPROVER)),
    "financing.approve": lambda k, r, s, mine: mine and k is K.BANK and r is R.APPROVER,
    "financing.read_decision": None,   # the SME sees approved ones only: tests/financing
    "financing.read_loan": lambda k, r, s, mine: mine or k is K.PLATFORM_OPERATOR,
    "financing.disburse": lambda k, r, s, mine: (
        mine and k is K.BANK and r in (R.OFFICER, R.APPROVER)),
    "financing.cancel_loan": None,     # the bank's approvers or the SME: tests/financing
    "financing.repay": lambda k, r, s, mine: mine and k is K.SME,
    # insurance: "mine" is the insurer's or the insured's record (banks: tests/insurance)
    "insurance.issue": lambda k, r, s, mine: k is K.INSURER and r in (R.OFFICER, R.APPROVER),
    "insurance.manage": lambda k, r, s, mine: (
        mine and k is K.INSURER and r in (R.OFFICER, R.APPROVER)),
    "insurance.read": None,               # banks need the assignments: tests/insurance
    "insurance.act_for_insured": lambda k, r, s, mine: (
        mine and k is K.SME and r in (R.OFFICER, R.APPROVER)),
    "insurance.claim": None,              # banks need the assignments: tests/insurance
    "insurance.accept_assignment": lambda k, r, s, mine: (
        mine and k is K.BANK and r in (R.OFFICER, R.APPROVER)),
    # oversight: "mine" is an alert naming the actor's organisation as its other party (the
    # lending bank), the platform's thresholds, an SME's own rating, an audit event
    "oversight.read_alert": lambda k, r, s, mine: mine or k is K.PLATFORM_OPERATOR,
    "oversight.handle_alert": lambda k, r, s, mine: mine or k is K.PLATFORM_OPERATOR,
    "oversight.configure": lambda k, r, s, mine: (
        k is K.PLATFORM_OPERATOR and r in (R.APPROVER, R.ADMIN)),
    "oversight.read_rating": None,     # banks and insurers need their requests: tests/oversight
    "audit.read": lambda k, r, s, mine: mine or k is K.PLATFORM_OPERATOR,
    # the compensation fund: "mine" is the bank's loan or claim (a fund: covering all banks)
    "compensation.manage": lambda k, r, s, mine: (
        k is K.PLATFORM_OPERATOR and r in (R.APPROVER, R.ADMIN)),
    "compensation.read_fund": lambda k, r, s, mine: k in (K.BANK, K.PLATFORM_OPERATOR),
    "compensation.read_claim": lambda k, r, s, mine: mine or k is K.PLATFORM_OPERATOR,
    "compensation.file": lambda k, r, s, mine: k is K.BANK and r in (R.OFFICER, R.APPROVER),
    "compensation.claim": lambda k, r, s, mine: (
        mine and k is K.BANK and r in (R.OFFICER, R.APPROVER)),
    "compensation.withdraw": lambda k, r, s, mine: (
        mine and k is K.BANK and r in (R.OFFICER, R.APPROVER)),
    # statistics: every organisation's figures, for the approved platform operator only
    "statistics.read": lambda k, r, s, mine: k is K.PLATFORM_OPERATOR and s is APPROVED,
}


def rule_target(action: str, org_id: int):
    if action in ("accounts.edit_filing", "accounts.decide_filing"):
        return org(org_id, K.SME, S.PENDING)
    if action == "accounts.manage_users":
        return user(org_id=org_id, user_id=200)
    if action == "accounts.manage_tokens":
        return token(org_id)
    if action == "trade.read_document":
        from finance_app.trade.models import Payment
        return Payment(id=31, filer_org_id=org_id, ebc_code="4404930001")
    if action == "trade.read_batch":
        from finance_app.trade.models import IngestBatch
        return IngestBatch(id=32, org_id=org_id)
    if action == "trade.read_receivable":
        from finance_app.trade.models import Receivable
        return Receivable(id=33, seller_org_id=org_id)
    if action == "ledger.read_account":
        from finance_app.ledger.models import LedgerAccount
        return LedgerAccount(id=34, org_id=org_id)
    if action in ("settlement.read", "settlement.pay"):
        from finance_app.settlement.models import SettlementRecord
        return SettlementRecord(id=35, payer_org_id=org_id, payee_org_id=99)
    if action == "warehouse.operate":
        from finance_app.warehouse.models import Warehouse
        return Warehouse(id=37, operator_org_id=org_id)
    if action == "warehouse.offer":
        from finance_app.warehouse.models import WarehouseReceipt
        return WarehouseReceipt(id=38, operator_org_id=99, depositor_org_id=org_id)
    if action == "collateral.encumber":
        return org(org_id, K.BANK)
    if action in ("collateral.read", "collateral.manage", "collateral.release"):
        from finance_app.collateral.models import Encumbrance
        return Encumbrance(id=39, holder_org_id=org_id)
    if action.startswith("financing."):
        return _financing_target(action, org_id)
    if action == "insurance.manage":
        from finance_app.insurance.models import Policy
        return Policy(id=40, insurer_org_id=org_id, insured_org_id=99)
    if action == "insurance.act_for_insured":
        from finance_app.insurance.models import Policy
        return Policy(id=41, insurer_org_id=99, insured_org_id=org_id)
    if action == "insurance.accept_assignment":
        from finance_app.insurance.models import IndemnityAssignment
        return IndemnityAssignment(id=42, insurer_org_id=99, insured_org_id=98,
                                   bank_org_id=org_id)
    if action in ("oversight.read_alert", "oversight.handle_alert"):
        from finance_app.oversight.models import RiskAlert
        return RiskAlert(id=43, subject_org_id=99, party_org_id=org_id)
    if action == "oversight.configure":
        return org(org_id, K.PLATFORM_OPERATOR)
    if action == "audit.read":
        from finance_app.audit.models import AuditEvent
        return AuditEvent(id=44, org_id=org_id)
    if action.startswith("compensation."):
        return _compensation_target(action, org_id)
    if action in ("settlement.confirm", "settlement.cancel"):
        from finance_app.settlement.models import SettlementRecord
        return SettlementRecord(id=36, payer_org_id=99, payee_org_id=org_id)
    return None


def _financing_target(action: str, org_id: int):
    from finance_app.financing import models
    from finance_app.financing.states import ProductStatus
    if action in ("financing.manage_products", "financing.grant_facility", "financing.browse",
                  "financing.request"):
        return org(org_id, K.BANK if action.endswith(("products", "facility")) else K.SME)
    if action == "financing.read_product":
        return models.FinancingProduct(id=40, bank_org_id=org_id, status=ProductStatus.ACTIVE)
    if action == "financing.read_facility":
        return models.Facility(id=41, bank_org_id=org_id, sme_org_id=99)
    if action in ("financing.read_request", "financing.manage_request"):
        return models.FinancingRequest(id=42, sme_org_id=org_id, targets=[])
    if action in ("financing.review", "financing.prepare"):
        return models.RequestTarget(id=43, bank_org_id=org_id)
    if action == "financing.approve":
        return models.Decision(id=44, bank_org_id=org_id)
    if action in ("financing.read_loan", "financing.disburse", "financing.repay"):
        kind_is_sme = action == "financing.repay"
        return models.Loan(id=45, bank_org_id=99 if kind_is_sme else org_id,
                           sme_org_id=org_id if kind_is_sme else 98)
    return None


def _compensation_target(action: str, org_id: int):
    from finance_app.compensation.models import CompensationClaim, CompensationFund
    from finance_app.financing.models import Loan
    if action == "compensation.read_fund":
        return CompensationFund(id=46, operator_org_id=99, banks=[])
    if action == "compensation.claim":
        return Loan(id=47, bank_org_id=org_id, sme_org_id=99)
    if action in ("compensation.read_claim", "compensation.withdraw"):
        return CompensationClaim(id=48, bank_org_id=org_id, operator_org_id=99)
    return None


def test_a_fund_naming_banks_is_seen_by_those_banks_and_the_operator_only():
    from finance_app.compensation.models import CompensationFund, FundBank
    fund = CompensationFund(id=49, operator_org_id=99, banks=[FundBank(bank_org_id=1)])
    assert authz.can(user(K.BANK, org_id=1), "compensation.read_fund", fund)
    assert not authz.can(user(K.BANK, org_id=2), "compensation.read_fund", fund)
    assert authz.can(user(K.PLATFORM_OPERATOR, org_id=3), "compensation.read_fund",
                     fund)


def test_a_paused_product_is_seen_by_its_bank_and_the_operator_only():
    from finance_app.financing.models import FinancingProduct
    from finance_app.financing.states import ProductStatus
    paused = FinancingProduct(id=40, bank_org_id=MY_ORG, status=ProductStatus.PAUSED)
    assert authz.can(user(K.BANK), "financing.read_product", paused)
    assert authz.can(user(K.PLATFORM_OPERATOR, org_id=OTHER_ORG), "financing.read_product",
                     paused)
    assert not authz.can(user(K.SME, org_id=OTHER_ORG), "financing.read_product", paused)
    assert not authz.can(user(K.BANK, org_id=OTHER_ORG), "financing.read_product", paused)


def test_a_bank_reads_a_request_sent_to_it_and_an_sme_only_approved_decisions():
    from finance_app.financing import models
    request = models.FinancingRequest(id=42, sme_org_id=OTHER_ORG,
                                      targets=[models.RequestTarget(bank_org_id=MY_ORG)])
    assert authz.can(user(K.BANK), "financing.read_request", request)
    assert not authz.can(user(K.BANK, org_id=9), "financing.read_request", request)
    draft = models.Decision(id=44, bank_org_id=MY_ORG, request=request)
    sme = user(K.SME, org_id=OTHER_ORG)
    assert not authz.can(sme, "financing.read_decision", draft)
    from datetime import datetime
    draft.approved_at = datetime(2026, 12, 1)
    assert authz.can(sme, "financing.read_decision", draft)
    assert not authz.can(user(K.BANK, org_id=9), "financing.read_decision", draft)


@pytest.mark.parametrize("kind", list(OrgKind))
def test_an_sme_reads_the_documents_that_name_it(kind):
    """A payment slip filed by a payment institution names the SME as its e-commerce
    company (ebcCode): the SME reads it; no other kind does by the code alone."""
    from finance_app.trade.models import Order, Payment
    reader = user(kind)
    reader.organisation.customs_code = "4404930001"
    slip = Payment(id=31, filer_org_id=OTHER_ORG, ebc_code="4404930001")
    elsewhere = Payment(id=32, filer_org_id=OTHER_ORG, ebc_code="4419930002")
    order = Order(id=MY_ORG, filer_org_id=OTHER_ORG, ebc_code="4419930002")
    sees = kind in (K.SME, K.PLATFORM_OPERATOR)
    assert authz.can(reader, "trade.read_document", slip) is sees
    assert authz.can(reader, "trade.read_document", elsewhere) is (kind is K.PLATFORM_OPERATOR)
    if kind is not K.PLATFORM_OPERATOR:
        # hidden as missing, even when the order's id equals the reader's organisation id
        with pytest.raises(NotFound):
            authz.require(reader, "trade.read_document", order)


def test_every_rule_has_expectations_here():
    assert set(authz.RULES) == set(RULE_EXPECTATIONS), (
        "Write down who each new rule in authz.RULES lets through in RULE_EXPECTATIONS")


@pytest.mark.parametrize("kind,role,status", COMBINATIONS, ids=IDS)
def test_rules(kind, role, status):
    actor = user(kind, [role], status)
    wrong = []
    for action, expect in RULE_EXPECTATIONS.items():
        if expect is None:
            continue
        for org_id, mine in ((MY_ORG, True), (OTHER_ORG, False)):
            got = authz.can(actor, action, rule_target(action, org_id))
            if got is not expect(kind, role, status, mine):
                wrong.append(f"{action} on {'own' if mine else 'another'} organisation's "
                             f"object: {got}")
    if not authz.can(actor, "accounts.read_profile", actor.organisation):
        wrong.append("accounts.read_profile of its own profile: False")
    for target_status in S:
        got = authz.can(actor, "accounts.read_profile", org(OTHER_ORG, K.SME, target_status))
        if got is not expected_read_profile(kind, status, False, target_status):
            wrong.append(f"accounts.read_profile of another {target_status.value} profile: {got}")
    assert not wrong, f"{kind.value} {role.value} ({status.value}):\n  " + "\n  ".join(wrong)


@pytest.mark.parametrize("action", sorted(RULE_EXPECTATIONS))
def test_no_rule_lets_anonymous_or_deactivated_users_through(action):
    gone = user(K.PLATFORM_OPERATOR, list(Role), active=False)
    target = rule_target(action, MY_ORG) or org(MY_ORG)
    assert authz.can(AnonymousUserMixin(), action, target) is False
    assert authz.can(None, action, target) is False
    assert authz.can(gone, action, target) is False


# --------------------------------------------------------------------------- require


def test_require_returns_quietly_when_allowed():
    admin = user(roles=[R.ADMIN])
    assert authz.require(admin, "accounts.manage_users", user(user_id=300)) is None


def test_another_organisations_object_is_hidden_as_not_found():
    admin = user(roles=[R.ADMIN])
    for obj, what in ((user(org_id=OTHER_ORG, user_id=300), "user"),
                      (token(OTHER_ORG), "apitoken"),
                      (org(OTHER_ORG, K.SME, S.PENDING), "organisation")):
        action = {"user": "accounts.manage_users", "apitoken": "accounts.manage_tokens",
                  "organisation": "accounts.read_profile"}[what]
        with pytest.raises(NotFound) as refused:
            authz.require(admin, action, obj)
        # worded exactly like the "no such id" the services give, so existence does not show
        assert refused.value.message == NotFound(what, obj.id).message


def test_hiding_does_not_depend_on_how_ids_happen_to_line_up():
    """Another organisation's user whose id equals my organisation's id is still hidden."""
    admin = user(roles=[R.ADMIN], org_id=MY_ORG)
    stranger = user(org_id=OTHER_ORG, user_id=MY_ORG)
    with pytest.raises(NotFound):
        authz.require(admin, "accounts.manage_users", stranger)


def test_without_hide_or_within_ones_own_organisation_the_refusal_is_403():
    officer = user(roles=[R.OFFICER])
    with pytest.raises(Forbidden):  # a colleague: the officer knows it exists
        authz.require(officer, "accounts.manage_users", user(user_id=300))
    with pytest.raises(Forbidden):
        authz.require(officer, "accounts.edit_filing", officer.organisation)
    bank = user(K.BANK, [R.APPROVER])
    with pytest.raises(Forbidden):  # the operator's queue is not secret, only its decisions
        authz.require(bank, "accounts.decide_filing", org(OTHER_ORG), hide=False)
    with pytest.raises(Forbidden):
        authz.require(bank, "audit.read_all")


@pytest.mark.parametrize("nobody", [None, AnonymousUserMixin()], ids=["none", "anonymous"])
def test_require_refuses_the_anonymous_without_crashing(nobody):
    with pytest.raises((NotFound, Forbidden)):
        authz.require(nobody, "accounts.read_profile", org(OTHER_ORG))
    with pytest.raises(Forbidden):
        authz.require(nobody, "audit.read_all")


@pytest.mark.parametrize("status", list(S))
def test_require_approved_explains_the_filing_status(status):
    someone = user(status=status)
    someone.organisation.filing_reason = "Licence expired"
    if status is APPROVED:
        assert authz.require_approved(someone) is None
        return
    with pytest.raises(authz.FilingNotApproved) as refused:
        authz.require_approved(someone)
    assert refused.value.status_code == 403 and refused.value.code == "filing_not_approved"
    expected = {S.PENDING: "pending review by the platform operator",
                S.REJECTED: "rejected: Licence expired",
                S.SUSPENDED: "suspended: Licence expired"}[status]
    assert expected in refused.value.message
