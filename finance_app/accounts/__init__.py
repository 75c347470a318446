"""Organisations, users, roles, sessions, second factor and API tokens."""
