"""Forms check shape only; the services decide what is valid and name the field at fault."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField, EmailField, PasswordField, SelectField, SelectMultipleField, StringField,
    TextAreaField, widgets,
)
from wtforms.validators import DataRequired, Length, Optional

from finance_app.accounts.states import SIGNUP_KINDS, OrgKind, Role
from finance_app.errors import DomainError

KIND_LABELS = {
    OrgKind.SME: _l("SME (cross-border e-commerce seller)"),
    OrgKind.BANK: _l("Bank"),
    OrgKind.INSURER: _l("Export credit insurer"),
    OrgKind.WAREHOUSE_OPERATOR: _l("Warehouse operator"),
    OrgKind.LOGISTICS: _l("Logistics company"),
    OrgKind.PAYMENT_INSTITUTION: _l("Payment institution"),
    OrgKind.PLATFORM_OPERATOR: _l("Platform operator"),
}
ROLE_LABELS = {Role.ADMIN: _l("Admin"), Role.OFFICER: _l("Officer"),
               Role.APPROVER: _l("Approver")}


class MultiCheckboxField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class ProfileFields(FlaskForm):
    name = StringField(_l("Organisation name"), validators=[DataRequired(), Length(max=200)])
    name_en = StringField(_l("English name"), validators=[Optional(), Length(max=200)])
    country = SelectField(_l("Country of registration"), choices=[], default="CN",
                          validate_choice=False)
    credit_code = StringField(_l("Unified Social Credit Code"),
                              description=_l("18 characters (GB 32100); Chinese organisations"))
    customs_code = StringField(_l("Customs registration code"),
                               description=_l("10 characters, if you have one"))
    registration_number = StringField(_l("Company registration number"),
                                      description=_l("Foreign organisations"))
    address = StringField(_l("Registered address"), validators=[Optional(), Length(max=300)])
    zone = StringField(_l("Pilot-zone area"), validators=[Optional(), Length(max=40)],
                       description=_l("e.g. Zhuhai Hengqin, Dongguan Humen"))
    contact_name = StringField(_l("Contact person"), validators=[Optional(), Length(max=100)])
    contact_email = EmailField(_l("Contact e-mail"), validators=[DataRequired()])
    contact_phone = StringField(_l("Contact phone"), validators=[Optional(), Length(max=40)])

    def set_country_choices(self, locale: str) -> None:
        from finance_app.accounts.identifiers import country_choices
        self.country.choices = country_choices(locale)


class SignUpForm(ProfileFields):
    kind = SelectField(_l("Kind of organisation"),
                       choices=[(k.value, KIND_LABELS[k]) for k in SIGNUP_KINDS])
    admin_name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=100)])
    email = EmailField(_l("Your e-mail (you sign in with it)"), validators=[DataRequired()])
    password = PasswordField(_l("Password"), validators=[DataRequired()],
                             description=_l("At least 12 characters"))
    password_confirm = PasswordField(_l("Repeat the password"), validators=[DataRequired()])


class FilingForm(ProfileFields):
    pass


class SignInForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])


class CodeForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=20)],
                       description=_l("6 digits from your authenticator, or a recovery code"))


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired()])
    new_password = PasswordField(_l("New password"), validators=[DataRequired()])


class UserForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=100)])
    email = EmailField(_l("E-mail"), validators=[DataRequired()])
    roles = MultiCheckboxField(_l("Roles"), choices=[(r.value, ROLE_LABELS[r]) for r in Role],
                               default=[Role.OFFICER.value])
    password = PasswordField(_l("Initial password"), validators=[DataRequired()],
                             description=_l("At least 12 characters; tell the user in person"))


class RolesForm(FlaskForm):
    roles = MultiCheckboxField(_l("Roles"), choices=[(r.value, ROLE_LABELS[r]) for r in Role])


class TokenForm(FlaskForm):
    name = StringField(_l("Token name"), validators=[DataRequired(), Length(max=100)],
                       description=_l("What will use it, e.g. 'ERP order sync'"))


class DecisionForm(FlaskForm):
    action = SelectField(_l("Decision"), choices=[], validate_choice=False)
    reason = TextAreaField(_l("Reason (shown to the organisation)"),
                           validators=[Optional(), Length(max=2000)])


class ButtonForm(FlaskForm):
    """A form with only the CSRF token, for POST buttons."""


class LanguageForm(FlaskForm):
    lang = SelectField(choices=[("en", "English"), ("zh_CN", "中文")], validate_choice=False)
    remember = BooleanField()


def attach_error(form: FlaskForm, exc: DomainError) -> None:
    """Show a service's error on the field it names, or on the form as a whole."""
    field = getattr(form, exc.field, None) if exc.field else None
    if field is not None and hasattr(field, "errors"):
        if not isinstance(field.errors, list):
            field.errors = list(field.errors)
        field.errors.append(exc.message)
    else:
        form.form_errors.append(exc.message)
