"""Simplified Chinese (zh_CN) and English: the catalogue, language choice and formatting.

The compiled catalogues (``*.mo``) are not in git; this module compiles any missing or
stale one from its ``.po`` when it is imported (at collection, before any test runs), so
``pytest`` works on a fresh clone.  CI compiles them with
``pybabel compile -d finance_app/translations`` as well.
"""
from __future__ import annotations

import contextvars
import os
import re
import tempfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask_babel import force_locale, lazy_gettext

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "finance_app" / "translations"
# Babel reads "zh_CN" as zh_Hans_CN (CLDR likely subtags) and Flask-Babel looks for the
# catalogue under str(locale), so the Simplified Chinese catalogue lives in zh_Hans_CN/.
ZH_DIR = "zh_Hans_CN"
ZH_PO = TRANSLATIONS / ZH_DIR / "LC_MESSAGES" / "messages.po"
BABEL_CFG = ROOT / "babel.cfg"
# The keywords CI extracts with: pybabel extract -F babel.cfg -k lazy_gettext -k _l
KEYWORDS = {**DEFAULT_KEYWORDS, "lazy_gettext": None, "_l": None}
# msgids whose Chinese is written the same (codes, acronyms); none so far.
SAME_IN_CHINESE: set[str] = set()


def _read_po(path: Path) -> Catalog:
    with path.open("rb") as fileobj:
        return read_po(fileobj)


def compile_catalogs(translations: Path = TRANSLATIONS) -> list[Path]:
    """Compile every ``messages.po`` whose ``.mo`` is missing or older; returns those built.

    Written to a temporary file and renamed into place, so parallel test workers never see
    half a file.
    """
    built = []
    for po_path in sorted(translations.glob("*/LC_MESSAGES/*.po")):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        catalog = _read_po(po_path)
        fd, tmp = tempfile.mkstemp(dir=po_path.parent, suffix=".mo.tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                write_mo(out, catalog)
            os.replace(tmp, mo_path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        built.append(mo_path)
    return built


compile_catalogs()


def extract_messages() -> dict[str, list[str]]:
    """Every msgid in the source, as ``pybabel extract -F babel.cfg`` finds it: id -> places."""
    with BABEL_CFG.open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg, filename=str(BABEL_CFG))
    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=KEYWORDS):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault(msgid, []).append(f"{filename}:{lineno}")
    return found


# --------------------------------------------------------------------------- the catalogue

def test_every_source_message_has_a_chinese_translation():
    extracted = extract_messages()
    assert len(extracted) > 200, "extraction found too little; is babel.cfg right?"
    catalog = _read_po(ZH_PO)
    problems = []
    for msgid, places in sorted(extracted.items()):
        message = catalog.get(msgid)
        where = ", ".join(places[:3])
        if message is None:
            problems.append(f"not in messages.po: {msgid!r} ({where})")
        elif not message.string:
            problems.append(f"untranslated: {msgid!r} ({where})")
        elif message.fuzzy:
            problems.append(f"fuzzy: {msgid!r} ({where})")
    assert not problems, (
        f"{len(problems)} message(s) lack a zh_CN translation. Run\n"
        "  pybabel extract -F babel.cfg -k lazy_gettext -k _l -o messages.pot .\n"
        "  pybabel update -i messages.pot -d finance_app/translations --ignore-obsolete\n"
        f"and translate them in {ZH_PO.relative_to(ROOT)}:\n  "
        + "\n  ".join(problems))


def test_catalogue_placeholders_match_and_nothing_is_fuzzy():
    catalog = _read_po(ZH_PO)
    errors = [f"{message.id!r}: {'; '.join(str(e) for e in errs)}"
              for message, errs in catalog.check()]
    assert not errors, "\n".join(errors)
    for message in catalog:
        if not message.id:
            continue
        assert not message.fuzzy, message.id
        assert message.string, message.id
        for name in re.findall(r"%\((\w+)\)s", message.id):
            assert f"%({name})s" in message.string, (message.id, message.string)
        # Chinese text, not a copy of the English (list real exceptions here).
        if message.id not in SAME_IN_CHINESE:
            assert re.search(r"[\u4e00-\u9fff]", message.string), (message.id, message.string)


def test_catalogue_directories_are_where_flask_babel_looks():
    """Flask-Babel loads <dir>/str(Locale.parse(code)); a "zh_CN/" folder would be ignored."""
    from babel import Locale
    from finance_app.i18n import normalise_locale
    assert str(Locale.parse(normalise_locale("zh-CN"))) == ZH_DIR
    names = [p.parent.parent.name for p in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po")]
    assert ZH_DIR in names
    for name in names:
        assert str(Locale.parse(name)) == name, f"rename {name}/ to {Locale.parse(name)}/"


def test_catalogue_compiles(tmp_path):
    from babel import Locale
    from babel.support import Translations
    (tmp_path / ZH_DIR / "LC_MESSAGES").mkdir(parents=True)
    (tmp_path / ZH_DIR / "LC_MESSAGES" / "messages.po").write_bytes(ZH_PO.read_bytes())
    built = compile_catalogs(tmp_path)
    assert [p.name for p in built] == ["messages.mo"]
    translations = Translations.load(str(tmp_path), [Locale.parse("zh_CN")])
    assert translations.gettext("Sign in") == "登录"
    assert translations.gettext("Unified Social Credit Code") == "统一社会信用代码"
    # The real translations directory is compiled and current too.
    mo = ZH_PO.with_suffix(".mo")
    assert mo.exists() and mo.stat().st_mtime >= ZH_PO.stat().st_mtime


# --------------------------------------------------------------------------- language choice

ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
EN = {"Accept-Language": "en-GB,en;q=0.9"}


def _text(response) -> str:
    return response.get_data(as_text=True)


def test_accept_language_chooses_chinese_or_english(client):
    page = _text(client.get("/signin", headers=ZH))
    assert '<html lang="zh-CN">' in page
    assert "<h1>登录</h1>" in page
    assert "电子邮箱" in page and "密码" in page
    assert "Sign in" not in page

    page = _text(client.get("/signin", headers=EN))
    assert '<html lang="en">' in page
    assert "<h1>Sign in</h1>" in page
    assert "登录" not in page

    # An unsupported language falls back to English; plain "zh" is Simplified Chinese.
    assert "<h1>Sign in</h1>" in _text(client.get("/signin", headers={"Accept-Language": "fr"}))
    assert "<h1>登录</h1>" in _text(client.get("/signin", headers={"Accept-Language": "zh"}))


def test_signup_page_in_chinese(client):
    page = _text(client.get("/signup", headers=ZH))
    for text in ("机构注册备案", "统一社会信用代码", "海关注册编码", "中小企业（跨境电商卖家）",
                 "出口信用保险机构", "仓储企业", "物流企业", "支付机构", "试验区片区"):
        assert text in page, text
    # Country names come from CLDR in the page's language, China first.
    assert re.search(r'<option[^>]*value="CN"[^>]*>中国</option>', page)


def test_service_errors_are_shown_in_chinese_and_escaped(client):
    form = {"kind": "sme", "name": "测试", "country": "CN", "contact_email": "a@example.test",
            "credit_code": "<1440400MA0000001X", "admin_name": "张三",
            "email": "zhang@example.test", "password": "correct-horse-battery-9",
            "password_confirm": "correct-horse-battery-9"}
    response = client.post("/signup", data=form, headers=ZH)
    assert response.status_code == 422
    error = re.search(r'<p class="error" data-field="credit_code">(.*?)</p>', _text(response))
    assert error, _text(response)[:3000]
    # Translated, and the user's input inside the message is escaped, not markup.
    assert error.group(1) == "统一社会信用代码中含有字符“&lt;”，GB 32100 不使用该字符。"

    page = _text(client.post("/signup", data={**form, "credit_code": ""}, headers=ZH))
    assert "请输入统一社会信用代码。" in page
    page = _text(client.post("/signup", data={**form, "password_confirm": "x"}, headers=ZH))
    assert "两次输入的密码不一致。" in page
    from tests.factories import credit_code
    page = _text(client.post("/signup", data={**form, "credit_code": credit_code(7),
                                             "password": "short-pass",
                                             "password_confirm": "short-pass"}, headers=ZH))
    assert "请至少使用 12 个字符。" in page
    # WTForms' own messages come from its bundled Chinese catalogue.
    page = _text(client.post("/signup", data={**form, "contact_email": ""}, headers=ZH))
    assert '<p class="error" data-field="contact_email">该字段是必填字段。</p>' in page

    response = client.post("/signup", data={**form, "credit_code": ""}, headers=EN)
    assert "Enter the Unified Social Credit Code." in _text(response)


def test_switcher_overrides_accept_language_for_anonymous_users(client):
    response = client.post("/language", data={"lang": "zh_CN"},
                           headers={**EN, "Referer": "http://localhost/signin"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/signin")  # back where the user was
    assert "<h1>登录</h1>" in _text(client.get("/signin", headers=EN))
    assert "<h1>机构注册备案</h1>" in _text(client.get("/signup", headers=EN))

    client.post("/language", data={"lang": "en"}, headers=ZH)
    assert "<h1>Sign in</h1>" in _text(client.get("/signin", headers=ZH))

    # Nonsense is ignored: the earlier choice stays.
    client.post("/language", data={"lang": "xx"}, headers=ZH)
    assert "<h1>Sign in</h1>" in _text(client.get("/signin", headers=ZH))


def test_switcher_marks_the_current_language(client):
    page = _text(client.get("/signin", headers=ZH))
    assert 'action="/language"' in page
    assert re.search(r'value="zh_CN" class="link active"[^>]*>中文</button>', page)
    assert re.search(r'value="en" class="link"[^>]*>English</button>', page)
    page = _text(client.get("/signin", headers=EN))
    assert re.search(r'value="en" class="link active"[^>]*>English</button>', page)
    assert re.search(r'value="zh_CN" class="link"[^>]*>中文</button>', page)


def test_anonymous_choice_survives_sign_in(client, org_user):
    from tests.conftest import sign_in
    user = org_user()
    client.post("/language", data={"lang": "zh_CN"}, headers=EN)
    dashboard = sign_in(client, user, follow=True)
    assert "<h1>工作台</h1>" in _text(dashboard)


def test_signed_in_choice_is_saved_on_the_user(app, make_client, org_user):
    from finance_app.accounts.models import User
    from finance_app.extensions import db
    from tests.conftest import sign_in

    user = org_user()
    user_id = user.id
    first = make_client()
    sign_in(first, user)
    assert "<h1>Dashboard</h1>" in _text(first.get("/dashboard", headers=EN))
    first.post("/language", data={"lang": "zh_CN"},
               headers={**EN, "Referer": "http://localhost/dashboard"})
    assert "<h1>工作台</h1>" in _text(first.get("/dashboard", headers=EN))
    db.session.expire_all()
    assert db.session.get(User, user_id).locale == "zh_CN"

    # Another browser, English by Accept-Language and with no session: the saved choice wins.
    first.post("/signout", data={})
    second = make_client()
    assert "<h1>Sign in</h1>" in _text(second.get("/signin", headers=EN))
    sign_in(second, db.session.get(User, user_id))
    page = _text(second.get("/dashboard", headers=EN))
    assert "<h1>工作台</h1>" in page and '<html lang="zh-CN">' in page

    # Switching back is saved too.
    second.post("/language", data={"lang": "en"}, headers=ZH)
    assert "<h1>Dashboard</h1>" in _text(second.get("/dashboard", headers=ZH))
    db.session.expire_all()
    assert db.session.get(User, user_id).locale == "en"


def test_chinese_pages_for_a_signed_in_operator(client, org_user):
    from finance_app.accounts.states import FilingStatus, OrgKind, Role
    from tests.conftest import sign_in

    org_user(kind=OrgKind.SME, status=FilingStatus.PENDING)
    operator = org_user(kind=OrgKind.PLATFORM_OPERATOR, roles=(Role.ADMIN, Role.APPROVER))
    client.post("/language", data={"lang": "zh_CN"})
    sign_in(client, operator)
    page = _text(client.get("/operator/filings"))
    assert "<h1>备案审核</h1>" in page and "待审核" in page and "中小企业" in page
    page = _text(client.get("/account/security"))
    assert "双因素认证" in page and "恢复码" in page
    pending = [line for line in _text(client.get("/operator/filings")).splitlines()
               if "/operator/filings/" in line][0]
    detail_url = re.search(r'href="(/operator/filings/\d+)"', pending).group(1)
    page = _text(client.get(detail_url))
    assert '<option value="approve">通过</option>' in page
    assert '<option value="reject">驳回</option>' in page
    assert "提交审核决定" in page


def test_filing_history_and_status_in_chinese(make_client, org_user):
    from finance_app.accounts import services
    from finance_app.accounts.states import FilingStatus, OrgKind, Role
    from finance_app.extensions import db
    from tests.conftest import sign_in

    sme = org_user(kind=OrgKind.SME, status=FilingStatus.PENDING)
    operator = org_user(kind=OrgKind.PLATFORM_OPERATOR, roles=(Role.ADMIN, Role.APPROVER))
    services.decide_filing(sme.org_id, "reject", actor=operator, reason="营业执照不清晰")
    db.session.commit()
    client = make_client()
    sign_in(client, sme)
    page = _text(client.get("/organisation", headers=ZH))
    assert "<h2>备案记录</h2>" in page
    assert "<td>已驳回</td><td>待审核 → 已驳回</td><td>营业执照不清晰</td>" in page
    assert "理由： 营业执照不清晰" in page
    assert "备案于 " in page and "，审核于 " in page
    page = _text(client.get("/dashboard", headers=ZH))
    assert "备案状态：" in page and "您的备案已被驳回：营业执照不清晰" in page
    # A business page refuses with the reason, in Chinese.
    page = _text(client.get("/organisation/users", headers=ZH))
    assert "贵机构的备案已被驳回：营业执照不清晰" in page


# --------------------------------------------------------------------------- formatting

@pytest.mark.parametrize("locale, expected", [
    ("en", {"CNY": "CN¥1,234.50", "USD": "$1,234.50", "JPY": "¥1,234", "KWD": "KWD1,234.500"}),
    ("zh_CN", {"CNY": "¥1,234.50", "USD": "US$1,234.50", "JPY": "JP¥1,234",
               "KWD": "KWD1,234.500"}),
])
def test_money_by_locale_with_iso_minor_units(app, locale, expected):
    from finance_app.i18n import money
    with force_locale(locale):
        assert money(Decimal("1234.5"), "CNY") == expected["CNY"]
        assert money(Decimal("1234.5"), "USD") == expected["USD"]
        assert money(Decimal("1234"), "JPY") == expected["JPY"]
        assert money(Decimal("1234.5"), "KWD") == expected["KWD"]
        assert "." not in money(Decimal("1234"), "JPY")  # yen has no minor unit
        assert money(Decimal("0.125"), "KWD").endswith("0.125")  # three decimals
        assert money(None) == "—"


def test_money_formats_decimals_only(app):
    from finance_app.i18n import money
    with pytest.raises(TypeError):
        money(1234.5, "CNY")


def test_numbers_and_dates_by_locale(app):
    from finance_app.i18n import fmt_date, fmt_datetime, number
    day = date(2025, 3, 1)
    moment = datetime(2025, 3, 1, 2, 30)  # stored in UTC; shown in Asia/Shanghai
    with force_locale("en"):
        assert number(Decimal("1234567.891")) == "1,234,567.891"
        assert fmt_date(day) == "Mar 1, 2025"
        assert fmt_date(day, "long") == "March 1, 2025"
        # CLDR puts a narrow no-break space before "AM".
        assert fmt_datetime(moment).replace("\u202f", " ") == "Mar 1, 2025, 10:30:00 AM"
    with force_locale("zh_CN"):
        assert number(Decimal("1234567.891")) == "1,234,567.891"
        assert fmt_date(day) == "2025年3月1日"
        assert fmt_datetime(moment) == "2025年3月1日 10:30:00"
    assert fmt_date(None) == "—" and fmt_datetime(None) == "—"


def test_template_filters_follow_the_page_language(app):
    from flask import render_template_string
    template = "{{ amount|money('CNY') }} {{ day|date }}"
    with app.test_request_context("/", headers=ZH):
        assert render_template_string(template, amount=Decimal("1234.5"),
                                      day=date(2025, 3, 1)) == "¥1,234.50 2025年3月1日"
    with app.test_request_context("/", headers=EN), force_locale("en"):
        assert render_template_string(template, amount=Decimal("1234.5"),
                                      day=date(2025, 3, 1)) == "CN¥1,234.50 Mar 1, 2025"


# --------------------------------------------------------------------------- messages outside requests and in JSON

def test_service_messages_work_without_a_request_or_app():
    """Services raise translated messages as plain str; outside any context, in English."""
    from flask import has_app_context
    from finance_app.accounts import identifiers, passwords
    from finance_app.errors import ValidationFailed

    def outside_any_context():
        assert not has_app_context()
        messages = []
        for check, value in ((identifiers.validate_credit_code, "123"),
                             (passwords.check_policy, "short")):
            try:
                check(value)
            except ValidationFailed as exc:
                messages.append(exc.message)
        return messages

    # A fresh contextvars.Context has no app or request context pushed.
    messages = contextvars.Context().run(outside_any_context)
    assert messages == ["A Unified Social Credit Code has 18 characters; this one has 3.",
                        "Use at least 12 characters."]
    assert all(type(m) is str for m in messages)


def test_service_messages_follow_the_locale(app):
    from finance_app.accounts import identifiers
    from finance_app.errors import ValidationFailed
    with force_locale("zh_CN"), pytest.raises(ValidationFailed) as caught:
        identifiers.validate_credit_code("123")
    assert caught.value.message == "统一社会信用代码应为 18 位，当前输入为 3 位。"
    assert type(caught.value.message) is str


def test_api_error_message_is_a_plain_string(app, org_user):
    from finance_app.accounts import services
    from finance_app.extensions import db

    admin = org_user()
    admin.locale = "zh_CN"
    _token, raw = services.create_token(actor=admin, name="i18n test")
    db.session.commit()
    client = app.test_client()
    # A service's refusal (the schema lets the body through): the user already exists.
    response = client.post("/api/v1/users", headers={"Authorization": f"Bearer {raw}"},
                           json={"email": admin.email, "name": "新用户",
                                 "roles": ["officer"], "password": "correct-horse-battery-9"})
    assert response.status_code == 422
    assert response.is_json
    error = response.get_json()["error"]
    assert error["code"] == "validation_failed" and error["field"] == "email"
    assert isinstance(error["message"], str)
    assert error["message"] == "使用该电子邮箱的用户已存在。"


def test_error_boundary_turns_lazy_strings_into_plain_escaped_strings(app):
    from finance_app.web import error_response
    message = lazy_gettext("Your organisation is suspended: %(reason)s", reason="<b>x</b>")
    with app.test_request_context("/api/v1/me"):
        response = error_response(403, "forbidden", message)
        assert response.get_json()["error"]["message"] == \
            "Your organisation is suspended: <b>x</b>"
    with app.test_request_context("/dashboard", headers={"Accept": "text/html"}):
        body, status = error_response(403, "forbidden", message)
        assert status == 403
        assert "suspended: &lt;b&gt;x&lt;/b&gt;" in body
