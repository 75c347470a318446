"""Risk alert vocabulary and its state machine."""
from __future__ import annotations

from enum import StrEnum
from typing import Mapping


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    SEVERE = "severe"


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class AlertAction(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"


S, A = AlertStatus, AlertAction
ALERT_TRANSITIONS: Mapping[tuple[AlertStatus, AlertAction], AlertStatus] = {
    (S.OPEN, A.ACKNOWLEDGE): S.ACKNOWLEDGED,
    (S.OPEN, A.RESOLVE): S.RESOLVED,
    (S.ACKNOWLEDGED, A.RESOLVE): S.RESOLVED,
}
