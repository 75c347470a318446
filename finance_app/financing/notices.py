"""The notices financing sends (in each organisation's inbox)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from finance_app.accounts.notifications import register_messages

register_messages({
    "financing.request_received": _l("%(sme)s asks for %(amount)s for %(tenor)s days; review "
                                     "the request and its evidence."),
    "financing.offer_prepared": _l("An offer on request %(request)s awaits an approver."),
    "financing.rejection_prepared": _l("A rejection of request %(request)s awaits an "
                                       "approver."),
    "financing.offer_received": _l("%(bank)s offers %(amount)s at %(rate)s%% a year, open "
                                   "until %(expiry)s."),
    "financing.request_rejected": _l("%(bank)s declined your request: %(reason)s"),
    "financing.offer_withdrawn": _l("%(bank)s withdrew its offer."),
    "financing.offer_lapsed_accepted": _l("Your offer on request %(request)s lapsed: the SME "
                                          "accepted another offer."),
    "financing.offer_lapsed_withdrawn": _l("Your offer on request %(request)s lapsed: the SME "
                                           "withdrew the request."),
    "financing.offer_accepted": _l("%(sme)s accepted your offer of %(amount)s; disburse it "
                                   "when the conditions are met."),
    "financing.loan_cancelled": _l("Loan %(loan)s was cancelled before disbursement: "
                                   "%(reason)s"),
    "financing.loan_disbursed": _l("Your loan was paid out: %(amount)s; it matures on "
                                   "%(maturity)s."),
    "financing.repayment_announced": _l("A repayment of %(amount)s on loan %(loan)s is on its "
                                        "way by bank transfer; confirm it when it arrives."),
    "financing.repayment_applied": _l("A repayment of %(amount)s was applied to loan "
                                      "%(loan)s."),
    "financing.instalment_overdue": _l("Loan %(loan)s: instalment %(number)s (%(amount)s) is "
                                       "overdue; penalty interest runs until it is paid."),
    "financing.loan_defaulted": _l("Loan %(loan)s is %(days)s days overdue and has "
                                   "defaulted."),
    "financing.loan_repaid": _l("Loan %(loan)s is repaid in full; %(released)s collateral "
                                "item(s) released."),
})
