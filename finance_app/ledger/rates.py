"""Exchange rates: published files, the operator's own entries, and the rate of a day.

Every rate is stored as ``1 base = rate quote`` with its date and source, exactly as
published (ten decimals at most, never rounded):

* the RMB central parity notice of CFETS (中国外汇交易中心受权公布人民币汇率中间价公告),
  a paragraph of text. It quotes most currencies as CNY per unit ("1美元对人民币7.1865元",
  stored as USD->CNY 7.1865), the yen per 100 ("100日元对人民币4.8134元", stored as
  JPY->CNY 0.048134) and others the other way round ("人民币1元对193.44韩元", stored as
  CNY->KRW 193.44);
* the ECB euro reference rates, as XML (``gesmes:Envelope``, one ``Cube time=...`` per
  day) or CSV (``Date, USD, JPY, ...``; one row per day, ``N/A`` where a currency has no
  rate that day), all stored as EUR->currency.

A file is recognised by what it contains, not by its name. ``parse_rate_file`` refuses a
file as a whole (``RateFileError``, naming the line or element) when it is not one of
these, or when a rate is not a positive number of at most ten decimals, a currency is
unknown, a date is malformed or in the future. Currencies withdrawn from ISO 4217 (the
kuna, the lev, the old national currencies of the euro area, ...) still appear in ECB
files; their rates are skipped and listed, since no money on the platform is held in them.
``import_rates`` stores a parsed file: a rate already there with the same value counts as
already imported; one with another value is a conflict, reported and never overwritten.

Which rate applies (``find_rate``), for a value date:

* only rates dated on or before the value date count, never a later one; the freshest
  wins. A direct quote (either way round: 1/rate for the inverse) is preferred; a cross
  through CNY, then through EUR, is used when there is no direct quote at least as
  recent. A cross is dated by its older leg, and each leg is found by the same rule;
* several sources on the same date: a manual entry by the operator overrides the
  published rates of its day; for a pair with CNY the CFETS central parity comes before
  the ECB rate (it is the official reference for RMB), for other pairs the ECB rate
  comes first;
* nothing found is ``RateMissing``, never a guess.

Cross and inverse rates keep 40 significant digits; amounts are rounded only when an
amount is converted (``fx.convert``).
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation, localcontext

from flask_babel import gettext
from lxml import etree
from sqlalchemy import and_, func, insert, or_, select
from sqlalchemy.exc import IntegrityError

from finance_app import clock
from finance_app.accounts.models import User
from finance_app.audit.services import record
from finance_app.errors import Conflict, Forbidden, ValidationFailed
from finance_app.extensions import db
from finance_app.ledger.models import ExchangeRate
from finance_app.ledger.states import RateSource
from finance_app.money import is_currency

RATE_DECIMALS = 10                  # the ExchangeRate column keeps ten decimals
MAX_RATE = Decimal(2**63 - 1).scaleb(-RATE_DECIMALS).to_integral_value(rounding="ROUND_DOWN")
RATE_PRECISION = 40                 # significant digits of inverse and cross rates
PIVOTS = ("CNY", "EUR")             # the currencies a cross rate may go through, in order

# ISO 4217 codes withdrawn from circulation that ECB files still carry (ISO 4217 list
# three); their rates are skipped, not refused.
WITHDRAWN = frozenset({"BGN", "CYP", "EEK", "HRK", "LTL", "LVL", "MTL", "ROL", "SIT",
                       "SKK", "TRL"})

# The currency names of the CFETS notice (current and earlier wordings).
CFETS_NAMES = {
    "美元": "USD", "欧元": "EUR", "日元": "JPY", "港元": "HKD", "港币": "HKD", "英镑": "GBP",
    "澳大利亚元": "AUD", "澳元": "AUD", "新西兰元": "NZD", "新加坡元": "SGD",
    "瑞士法郎": "CHF", "加拿大元": "CAD", "澳门元": "MOP", "林吉特": "MYR",
    "马来西亚林吉特": "MYR", "俄罗斯卢布": "RUB", "卢布": "RUB", "南非兰特": "ZAR",
    "韩元": "KRW", "阿联酋迪拉姆": "AED", "沙特里亚尔": "SAR", "匈牙利福林": "HUF",
    "波兰兹罗提": "PLN", "丹麦克朗": "DKK", "瑞典克朗": "SEK", "挪威克朗": "NOK",
    "土耳其里拉": "TRY", "墨西哥比索": "MXN", "泰铢": "THB",
}
_ECB_NS = "http://www.ecb.int/vocabulary/2002-08-01/eurofxref"
_GESMES_NS = "http://www.gesmes.org/xml/2002-08-01"
_MONTHS = {name: n for n, name in enumerate(
    ("January", "February", "March", "April", "May", "June", "July", "August",
     "September", "October", "November", "December"), start=1)}
_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_CFETS_DATE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_CFETS_PER_FOREIGN = re.compile(rf"(\d+)(\D+?)对人民币({_NUMBER})元")
_CFETS_PER_CNY = re.compile(rf"人民币1元对({_NUMBER})(\D+)")
_CFETS_MARK = re.compile(r"人民币汇率中间价\s*为")


class RateFileError(ValidationFailed):
    code = "rate_file_invalid"

    def __init__(self, message: str):
        super().__init__(message, field="file")


class RateMissing(ValidationFailed):
    code = "rate_missing"


# --------------------------------------------------------------------------- parsing

@dataclass(frozen=True)
class ParsedRate:
    base: str
    quote: str
    rate: Decimal
    rate_date: date
    where: str          # "line 3", "line 9 <Cube currency='USD'>"


@dataclass(frozen=True)
class RateFile:
    source: RateSource
    format: str                                  # "CFETS notice", "ECB XML", "ECB CSV"
    rates: tuple[ParsedRate, ...]
    skipped: tuple[str, ...] = ()                # withdrawn currencies left out

    @property
    def dates(self) -> list[date]:
        return sorted({r.rate_date for r in self.rates})


def parse_rate_file(data: bytes) -> RateFile:
    """Read a CFETS notice or an ECB XML or CSV file; refuse it whole if anything is wrong."""
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return _parse_ecb_xml(data)
    text = _decode(data)
    if _CFETS_MARK.search(text):
        return _parse_cfets(text)
    first = next((line for line in text.splitlines() if line.strip()), "")
    if first.split(",", 1)[0].strip().lower() == "date":
        return _parse_ecb_csv(text)
    raise RateFileError("This is not a rate file: expected a CFETS central parity notice "
                        "(人民币汇率中间价), an ECB reference-rate XML file or an ECB CSV "
                        "file (a 'Date, USD, JPY, ...' header).")


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise RateFileError("This is not a rate file: it is not text.")


def _rate(text: str, where: str, *, per: int = 1) -> Decimal:
    """A published rate: a positive number, at most ten decimals once divided by ``per``."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise RateFileError(f"{where}: '{text.strip()}' is not a number.") from None
    if not value.is_finite():
        raise RateFileError(f"{where}: '{text.strip()}' is not a number.")
    if value <= 0:
        raise RateFileError(f"{where}: the rate {text.strip()} is not positive.")
    if per != 1:
        with localcontext(prec=RATE_PRECISION):
            value = value / per
    if value > MAX_RATE:
        raise RateFileError(f"{where}: the rate {text.strip()} is too large.")
    if not _fits(value):
        raise RateFileError(f"{where}: the rate {text.strip()} has more than "
                            f"{RATE_DECIMALS} decimal places per unit.")
    return value


def _fits(value: Decimal) -> bool:
    """At most ten decimals (for a value no larger than ``MAX_RATE``)."""
    return value == value.quantize(Decimal(1).scaleb(-RATE_DECIMALS), rounding="ROUND_DOWN")


def _currency(code: str, where: str) -> str | None:
    """An ISO 4217 code; None for a withdrawn one (skipped); refused otherwise."""
    code = code.strip().upper()
    if code in WITHDRAWN:
        return None
    if not is_currency(code):
        raise RateFileError(f"{where}: unknown currency '{code}'.")
    return code


def _checked_date(year: int, month: int, day: int, text: str, where: str) -> date:
    try:
        value = date(year, month, day)
    except ValueError:
        raise RateFileError(f"{where}: '{text}' is not a valid date.") from None
    if value > clock.today():
        raise RateFileError(f"{where}: the date {value.isoformat()} is in the future.")
    return value


def _iso_date(text: str, where: str) -> date:
    match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", text.strip())
    if match is None:
        raise RateFileError(f"{where}: '{text.strip()}' is not a date (YYYY-MM-DD).")
    return _checked_date(int(match[1]), int(match[2]), int(match[3]), text.strip(), where)


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _parse_cfets(text: str) -> RateFile:
    mark = _CFETS_MARK.search(text)
    start = mark.start()
    dated = list(_CFETS_DATE.finditer(text, 0, start))
    if not dated:
        raise RateFileError(f"line {_line(text, start)}: the notice names no date "
                            "(YYYY年M月D日) before its rates.")
    found = dated[-1]
    rate_date = _checked_date(int(found[1]), int(found[2]), int(found[3]), found[0],
                              f"line {_line(text, found.start())}")
    body_start = mark.end()
    end = text.find("。", body_start)
    end = len(text) if end < 0 else end
    rates: list[ParsedRate] = []
    for number, item in enumerate(re.finditer(r"[^，,；;]+", text[body_start:end]), start=1):
        raw = re.sub(r"\s+", "", item[0])
        if not raw:
            continue
        where = f"line {_line(text, body_start + item.start())}, quote {number} ('{raw}')"
        if match := _CFETS_PER_CNY.fullmatch(raw):
            code = _cfets_currency(match[2], where)
            rates.append(ParsedRate("CNY", code, _rate(match[1], where), rate_date, where))
        elif match := _CFETS_PER_FOREIGN.fullmatch(raw):
            units = int(match[1])
            if units <= 0:
                raise RateFileError(f"{where}: a quote for {units} units.")
            code = _cfets_currency(match[2], where)
            rates.append(ParsedRate(code, "CNY", _rate(match[3], where, per=units),
                                    rate_date, where))
        else:
            raise RateFileError(f"{where}: not a quote of the form '1美元对人民币7.1865元' "
                                "or '人民币1元对1.1160澳门元'.")
    if not rates:
        raise RateFileError("The notice quotes no rates.")
    return RateFile(RateSource.CFETS, "CFETS notice", _unique(rates))


def _cfets_currency(name: str, where: str) -> str:
    if name not in CFETS_NAMES:
        raise RateFileError(f"{where}: unknown currency '{name}'.")
    return CFETS_NAMES[name]


def _parse_ecb_xml(data: bytes) -> RateFile:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise RateFileError(f"The file is not well-formed XML: {exc.msg}.") from None
    if root.getroottree().docinfo.doctype:
        raise RateFileError("The file contains a DOCTYPE declaration; ECB rate files never do.")
    if etree.QName(root).namespace not in (_GESMES_NS, _ECB_NS):
        raise RateFileError(f"line {root.sourceline}: <{etree.QName(root).localname}> is not "
                            "an ECB euro reference-rate file (gesmes:Envelope with Cube "
                            "elements).")
    days = root.findall(f".//{{{_ECB_NS}}}Cube[@time]")
    if not days:
        raise RateFileError("The file has no <Cube time='YYYY-MM-DD'> element: not an ECB "
                            "euro reference-rate file.")
    rates, skipped = [], set()
    for day in days:
        rate_date = _iso_date(day.get("time"), f"line {day.sourceline} <Cube time=...>")
        for cube in day.iterchildren(f"{{{_ECB_NS}}}Cube"):
            where = (f"line {cube.sourceline} <Cube currency='{cube.get('currency')}' "
                     f"rate='{cube.get('rate')}'> of {rate_date.isoformat()}")
            if cube.get("currency") is None or cube.get("rate") is None:
                raise RateFileError(f"{where}: a rate needs a currency and a rate.")
            code = _currency(cube.get("currency"), where)
            if code is None:
                skipped.add(cube.get("currency").strip().upper())
                continue
            rates.append(_euro_rate(code, cube.get("rate"), rate_date, where))
    if not rates:
        raise RateFileError("The file has no rates.")
    return RateFile(RateSource.ECB, "ECB XML", _unique(rates), tuple(sorted(skipped)))


def _euro_rate(code: str, text: str, rate_date: date, where: str) -> ParsedRate:
    if code == "EUR":
        raise RateFileError(f"{where}: a euro rate for the euro.")
    return ParsedRate("EUR", code, _rate(text, where), rate_date, where)


def _csv_date(text: str, where: str) -> date:
    text = text.strip()
    match = re.fullmatch(r"(\d{1,2}) ([A-Za-z]+) (\d{4})", text)
    if match is None:
        return _iso_date(text, where)
    month = _MONTHS.get(match[2].capitalize())
    if month is None:
        raise RateFileError(f"{where}: '{text}' is not a date.")
    return _checked_date(int(match[3]), month, int(match[1]), text, where)


def _parse_ecb_csv(text: str) -> RateFile:
    rows = csv.reader(io.StringIO(text), skipinitialspace=True)
    header = next(cells for cells in rows if any(c.strip() for c in cells))
    while not header[-1].strip():
        header.pop()
    columns: list[str | None] = []
    for position, name in enumerate(header[1:], start=2):
        columns.append(_currency(name, f"line {rows.line_num}, column {position}"))
    skipped = {h.strip().upper() for h, c in zip(header[1:], columns) if c is None}
    rates: list[ParsedRate] = []
    for cells in rows:
        line = rows.line_num
        while cells and not cells[-1].strip():
            cells.pop()
        if not cells:
            continue
        rate_date = _csv_date(cells[0], f"line {line}, column 1")
        if len(cells) > len(header):
            raise RateFileError(f"line {line}: {len(cells)} values for {len(header)} columns.")
        for position, (code, cell) in enumerate(zip(columns, cells[1:]), start=2):
            cell = cell.strip()
            if code is None or cell in ("", "N/A"):
                continue
            where = f"line {line}, column {position} ({code} on {rate_date.isoformat()})"
            rates.append(_euro_rate(code, cell, rate_date, where))
    if not rates:
        raise RateFileError("The file has no rates.")
    return RateFile(RateSource.ECB, "ECB CSV", _unique(rates), tuple(sorted(skipped)))


def _unique(rates: list[ParsedRate]) -> tuple[ParsedRate, ...]:
    """The rates once each; two different values for one pair and date refuse the file."""
    seen: dict[tuple[str, str, date], ParsedRate] = {}
    for rate in rates:
        key = (rate.base, rate.quote, rate.rate_date)
        first = seen.setdefault(key, rate)
        if first.rate != rate.rate:
            raise RateFileError(f"{rate.where}: {rate.base}/{rate.quote} on "
                                f"{rate.rate_date.isoformat()} is {rate.rate} here but "
                                f"{first.rate} at {first.where}.")
    return tuple(seen.values())


# --------------------------------------------------------------------------- importing

@dataclass(frozen=True)
class RateConflict:
    base: str
    quote: str
    rate_date: date
    stored: Decimal
    incoming: Decimal
    where: str

    def __str__(self) -> str:
        return (f"{self.where}: {self.base}/{self.quote} on {self.rate_date.isoformat()} is "
                f"{self.incoming} here but {self.stored} is stored; the stored rate is kept.")


@dataclass
class ImportResult:
    source: RateSource
    format: str
    dates: list[date]
    new: int = 0
    existing: int = 0
    conflicts: list[RateConflict] = field(default_factory=list)
    skipped: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return self.new + self.existing + len(self.conflicts)

    def summary(self) -> str:
        dates = (self.dates[0].isoformat() if len(self.dates) == 1 else
                 f"{self.dates[0].isoformat()} to {self.dates[-1].isoformat()} "
                 f"({len(self.dates)} dates)")
        text = (f"{self.format} ({self.source.value.upper()}), {dates}: {self.total} rates, "
                f"{self.new} new, {self.existing} already there, "
                f"{len(self.conflicts)} conflicts")
        if self.skipped:
            text += f"; withdrawn currencies skipped: {', '.join(self.skipped)}"
        return text


def import_rates(rate_file: RateFile, *, note: str | None = None) -> ImportResult:
    """Store a parsed file's rates; those already there (same value) are counted, those
    stored with another value are conflicts and keep the stored value."""
    for _attempt in range(2):
        result = ImportResult(rate_file.source, rate_file.format, rate_file.dates,
                              skipped=rate_file.skipped)
        stored = _stored(rate_file)
        rows = []
        for rate in rate_file.rates:
            previous = stored.get((rate.base, rate.quote, rate.rate_date))
            if previous is None:
                rows.append(dict(base=rate.base, quote=rate.quote, rate=rate.rate,
                                 rate_date=rate.rate_date, source=rate_file.source,
                                 note=(note or "")[:200] or None, created_at=clock.now()))
            elif previous == rate.rate:
                result.existing += 1
            else:
                result.conflicts.append(RateConflict(rate.base, rate.quote, rate.rate_date,
                                                     previous, rate.rate, rate.where))
        try:
            with db.session.begin_nested():
                if rows:
                    db.session.execute(insert(ExchangeRate), rows)
        except IntegrityError:
            continue   # another import stored some of them meanwhile: compare again
        result.new = len(rows)
        record("ledger.rates_imported", object_type="ExchangeRate", changes={
            "source": rate_file.source, "note": note, "dates": [
                result.dates[0], result.dates[-1]], "new": result.new,
            "existing": result.existing, "conflicts": len(result.conflicts)})
        return result
    raise Conflict(gettext("Another import of these rates is running; try again."),
                   field="file")


def _stored(rate_file: RateFile) -> dict[tuple[str, str, date], Decimal]:
    dates = rate_file.dates
    query = select(ExchangeRate.base, ExchangeRate.quote, ExchangeRate.rate_date,
                   ExchangeRate.rate).where(ExchangeRate.source == rate_file.source,
                                            ExchangeRate.rate_date.between(dates[0], dates[-1]))
    return {(b, q, d): r for b, q, d, r in db.session.execute(query)}


# --------------------------------------------------------------------------- manual entry

def _check_currency(code: object, field_name: str) -> str:
    if not isinstance(code, str) or not is_currency(code.strip().upper()):
        raise ValidationFailed(gettext("'%(code)s' is not an ISO 4217 currency code.",
                                       code=code), field=field_name)
    return code.strip().upper()


def enter_rate(base: str, quote: str, rate: Decimal, rate_date: date, *, actor: User,
               note: str | None = None) -> ExchangeRate:
    """The platform operator's own rate for a day: it overrides the published rates of
    that day. Entering it again replaces the operator's earlier entry (audited)."""
    from finance_app import authz
    if not authz.OPERATOR_DECIDER.admits(actor):
        raise Forbidden(gettext("Only the platform operator's approvers and admins enter "
                                "exchange rates."))
    base, quote = _check_currency(base, "base"), _check_currency(quote, "quote")
    if base == quote:
        raise ValidationFailed(gettext("A rate needs two different currencies."),
                               field="quote")
    if isinstance(rate, float) or not isinstance(rate, Decimal) or not rate.is_finite():
        raise ValidationFailed(gettext("Enter the rate as a number such as 7.1865."),
                               field="rate")
    if rate <= 0:
        raise ValidationFailed(gettext("The rate must be greater than zero."), field="rate")
    if rate > MAX_RATE:
        raise ValidationFailed(gettext("The rate is too large; enter it the other way "
                                       "round."), field="rate")
    if not _fits(rate):
        raise ValidationFailed(gettext("A rate has at most %(n)s decimal places.",
                                       n=RATE_DECIMALS), field="rate")
    if not isinstance(rate_date, date) or rate_date > clock.today():
        raise ValidationFailed(gettext("The rate date cannot be in the future."),
                               field="rate_date")
    note = (note or gettext("entered by %(email)s", email=actor.email))[:200]
    row = db.session.execute(select(ExchangeRate).where(
        ExchangeRate.base == base, ExchangeRate.quote == quote,
        ExchangeRate.rate_date == rate_date, ExchangeRate.source == RateSource.MANUAL)
        .with_for_update()).scalar_one_or_none()
    previous = row.rate if row is not None else None
    try:
        with db.session.begin_nested():
            if row is None:
                row = ExchangeRate(base=base, quote=quote, rate=rate, rate_date=rate_date,
                                   source=RateSource.MANUAL, note=note,
                                   entered_by_id=actor.id, created_at=clock.now())
                db.session.add(row)
            else:
                row.rate, row.note, row.entered_by_id = rate, note, actor.id
    except IntegrityError:
        raise Conflict(gettext("Someone entered this rate at the same moment; look at it "
                               "and enter it again if needed."), field="rate") from None
    entered = [_plain(previous), _plain(rate)] if previous is not None else _plain(rate)
    record("ledger.rate_entered", actor=actor, org_id=actor.org_id, obj=row, changes={
        "base": base, "quote": quote, "rate": entered, "rate_date": rate_date,
        "source": RateSource.MANUAL, "note": note})
    return row


def _plain(value: Decimal) -> str:
    """A rate as written, without the stored trailing zeros: 7.1865, 100."""
    return f"{value.normalize():f}"


# --------------------------------------------------------------------------- lookup

@dataclass(frozen=True)
class RateLeg:
    """One stored rate used by a quote, read ``base`` -> ``quote`` (``inverted``: the row
    is stored the other way round and 1/rate is used)."""
    rate_id: int
    base: str
    quote: str
    stored_rate: Decimal
    rate_date: date
    source: RateSource
    inverted: bool

    @property
    def rate(self) -> Decimal:
        if not self.inverted:
            return self.stored_rate
        with localcontext(prec=RATE_PRECISION):
            return Decimal(1) / self.stored_rate

    def describe(self) -> str:
        stored = f"1/{_plain(self.stored_rate)}" if self.inverted \
            else _plain(self.stored_rate)
        return (f"{self.base}->{self.quote} {stored} ({self.source.value.upper()} "
                f"{self.rate_date.isoformat()}, rate {self.rate_id})")

    def snapshot(self) -> dict:
        return {"rate_id": self.rate_id, "base": self.base, "quote": self.quote,
                "stored_rate": str(self.stored_rate), "inverted": self.inverted,
                "rate_date": self.rate_date.isoformat(), "source": self.source.value}


@dataclass(frozen=True)
class RateQuote:
    """1 ``base`` = ``rate`` ``quote`` for a value date. ``rate_date`` is the date of the
    (oldest) stored rate used; ``source`` a ``RateSource``, or "cfets+ecb" for a cross
    through both; ``via`` the pivot currency of a cross rate; ``path`` the stored rates."""
    base: str
    quote: str
    rate: Decimal
    rate_date: date
    source: str
    path: tuple[RateLeg, ...]
    via: str | None = None

    @property
    def description(self) -> str:
        return " x ".join(leg.describe() for leg in self.path)

    def snapshot(self) -> dict:
        return {"base": self.base, "quote": self.quote, "rate": str(self.rate),
                "rate_date": self.rate_date.isoformat(), "source": str(self.source),
                "via": self.via, "path": [leg.snapshot() for leg in self.path]}


def _precedence(base: str, quote: str) -> tuple[RateSource, ...]:
    if "CNY" in (base, quote):
        return RateSource.MANUAL, RateSource.CFETS, RateSource.ECB
    return RateSource.MANUAL, RateSource.ECB, RateSource.CFETS


def _direct(base: str, quote: str, on: date) -> RateLeg | None:
    """The freshest stored rate for the pair (either way round) dated on or before ``on``."""
    pair = or_(and_(ExchangeRate.base == base, ExchangeRate.quote == quote),
               and_(ExchangeRate.base == quote, ExchangeRate.quote == base))
    latest = select(func.max(ExchangeRate.rate_date)).where(
        pair, ExchangeRate.rate_date <= on).scalar_subquery()
    rows = db.session.execute(select(ExchangeRate).where(
        pair, ExchangeRate.rate_date == latest)).scalars().all()
    if not rows:
        return None
    order = _precedence(base, quote)
    row = min(rows, key=lambda r: (order.index(r.source), r.base != base))
    return RateLeg(row.id, base, quote, row.rate, row.rate_date, row.source,
                   inverted=row.base != base)


def _candidates(base: str, quote: str, on: date) -> list[RateQuote]:
    found = []
    leg = _direct(base, quote, on)
    if leg is not None:
        found.append(RateQuote(base, quote, leg.rate, leg.rate_date, leg.source, (leg,)))
    for pivot in PIVOTS:
        if pivot in (base, quote):
            continue
        first, second = _direct(base, pivot, on), None
        if first is not None:
            second = _direct(pivot, quote, on)
        if second is None:
            continue
        with localcontext(prec=RATE_PRECISION):
            rate = first.rate * second.rate
        sources = dict.fromkeys((first.source, second.source))
        source = first.source if len(sources) == 1 else "+".join(s.value for s in sources)
        found.append(RateQuote(base, quote, rate, min(first.rate_date, second.rate_date),
                               source, (first, second), via=pivot))
    return found


def find_rate(base: str, quote: str, on: date) -> RateQuote:
    """The rate of ``on`` (see the module notes for the rules); ``RateMissing`` if none."""
    base, quote = _check_currency(base, "currency"), _check_currency(quote, "currency")
    if base == quote:
        raise ValidationFailed(gettext("A rate needs two different currencies."),
                               field="currency")
    if on > clock.today():
        raise ValidationFailed(gettext("No rate is known for %(date)s: it is in the future.",
                                       date=on.isoformat()), field="value_date")
    candidates = _candidates(base, quote, on)
    if candidates:
        # freshest first; on the same date: direct, then through CNY, then through EUR
        rank = {None: 0, **{p: i for i, p in enumerate(PIVOTS, start=1)}}
        return min(candidates, key=lambda c: (-c.rate_date.toordinal(), rank[c.via]))
    if _candidates(base, quote, clock.today()):
        raise RateMissing(gettext(
            "No %(base)s/%(quote)s exchange rate on or before %(date)s; the rates known "
            "are all later.", base=base, quote=quote, date=on.isoformat()),
            field="value_date")
    raise RateMissing(gettext(
        "No %(base)s/%(quote)s exchange rate for %(date)s, directly or through "
        "%(pivots)s.", base=base, quote=quote, date=on.isoformat(),
        pivots=" or ".join(PIVOTS)), field="currency")
