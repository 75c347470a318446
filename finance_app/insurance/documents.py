"""The policy PDF (WeasyPrint), in English or Chinese: rendered once per language, when it
is first asked for, and kept with its SHA-256; the terms it states never change."""
from __future__ import annotations

from decimal import Decimal

from flask_babel import force_locale
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from finance_app import clock, pdf
from finance_app.accounts.models import Organisation
from finance_app.extensions import db
from finance_app.insurance.models import Policy, PolicyDocument

LANGUAGES = ("en", "zh_CN")


def _pct(ratio: Decimal, places: int = 2) -> str:
    return f"{(ratio * 100).quantize(Decimal(1).scaleb(-places))}%"


def render(policy: Policy, lang: str) -> bytes:
    with force_locale(lang):
        return pdf.render_pdf(
            "pdf/insurance_policy.html", policy=policy, lang=lang, pct=_pct,
            insurer=db.session.get(Organisation, policy.insurer_org_id),
            insured=db.session.get(Organisation, policy.insured_org_id),
            generated_at=clock.now())


def policy_document(policy: Policy, lang: str = "en") -> PolicyDocument:
    """The stored PDF of the policy in ``lang`` (rendered and stored on first use)."""
    lang = lang if lang in LANGUAGES else "en"
    query = select(PolicyDocument).where(PolicyDocument.policy_id == policy.id,
                                         PolicyDocument.lang == lang)
    found = db.session.execute(query).scalar_one_or_none()
    if found is not None:
        return found
    content = render(policy, lang)
    document = PolicyDocument(policy_id=policy.id, lang=lang, content=content,
                              sha256=pdf.fingerprint(content), rendered_at=clock.now())
    try:
        with db.session.begin_nested():
            db.session.add(document)
    except IntegrityError:   # rendered by another request at the same moment
        return db.session.execute(query).scalar_one()
    return document
