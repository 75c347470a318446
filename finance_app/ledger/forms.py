"""Forms and filters for the ledger pages. Shape only: the services decide."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, DecimalField, Form, SelectField, StringField
from wtforms.validators import (
    DataRequired, InputRequired, Length, Optional, Regexp, ValidationError,
)

from finance_app import clock
from finance_app.money import is_currency

CURRENCY = Regexp(r"^[A-Za-z]{3}$", message=_l("Enter a three-letter ISO 4217 code."))


def _upper(value):
    return value.strip().upper() if isinstance(value, str) else value


class EntryFilterForm(Form):
    """Filters of an account's entries and of the transactions list (GET)."""
    date_from = DateField(_l("From"), validators=[Optional()])
    date_to = DateField(_l("To"), validators=[Optional()])
    kind = StringField(_l("Kind"), validators=[Optional(), Length(max=40)])
    currency = StringField(_l("Currency"), validators=[Optional(), CURRENCY],
                           filters=[_upper])

    def value(self, name):
        field = self[name]
        return field.data if not field.errors and field.data else None


class AccountFilterForm(Form):
    currency = StringField(_l("Currency"), validators=[Optional(), CURRENCY],
                           filters=[_upper])
    purpose = StringField(_l("Purpose"), validators=[Optional(), Length(max=40)])
    owner = SelectField(_l("Held by"), choices=[("", _l("Anyone")),
                                                ("organisation", _l("Organisations")),
                                                ("platform", _l("The platform"))],
                        validators=[Optional()])


class StatementForm(Form):
    date_from = DateField(_l("From"), validators=[InputRequired()])
    date_to = DateField(_l("To"), validators=[InputRequired()])
    lang = SelectField(_l("Language"), choices=[("en", "English"), ("zh_CN", "中文")],
                       validators=[Optional()])

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if ok and self.date_to.data < self.date_from.data:
            self.date_to.errors.append(_l("The period ends before it starts."))
            return False
        return ok


class RateForm(FlaskForm):
    base = StringField(_l("One unit of"), validators=[DataRequired(), CURRENCY],
                       filters=[_upper], description=_l("e.g. USD"))
    quote = StringField(_l("Costs, in"), validators=[DataRequired(), CURRENCY],
                        filters=[_upper], description=_l("e.g. CNY"))
    rate = DecimalField(_l("Rate"), places=None, validators=[InputRequired()],
                        description=_l("How many units of the second currency one unit of "
                                       "the first costs, e.g. 7.1865"))
    rate_date = DateField(_l("Date"), validators=[InputRequired()], default=lambda: clock.today())
    note = StringField(_l("Note"), validators=[Optional(), Length(max=200)])

    def validate_base(self, field):
        if field.data and not is_currency(field.data):
            raise ValidationError(_l("'%(code)s' is not an ISO 4217 currency code.",
                                     code=field.data))

    validate_quote = validate_base
