"""Extensions, created unbound and initialised in ``create_app``."""
from __future__ import annotations

from flask import request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from finance_app.api.schemas import ErrorSchema
from finance_app.db import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


class PlatformApi(Api):
    """flask-smorest, with our error format in the document and our error handlers in charge."""
    ERROR_SCHEMA = ErrorSchema
    # No catch-all "default" response: each endpoint documents the error codes it can give
    # (api.schemas.documents_errors), so a client, and the fuzz tests, can rely on the list.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_error_handlers(self):  # finance_app.web registers them for the whole app
        return None


api = PlatformApi()


def client_address() -> str:
    return request.remote_addr or "unknown"
