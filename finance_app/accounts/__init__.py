from flask import Blueprint

bp = Blueprint("accounts", __name__)

from finance_app.accounts import views  # noqa: E402,F401
