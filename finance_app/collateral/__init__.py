"""The platform-wide collateral (encumbrance) registry."""
