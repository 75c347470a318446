"""Trade-evidence vocabularies: document kinds, directions, trade modes and verdicts."""
from __future__ import annotations

from enum import StrEnum


class DocumentKind(StrEnum):
    ORDER = "order"
    PAYMENT = "payment"
    WAYBILL = "waybill"
    INVENTORY = "inventory"


class Direction(StrEnum):
    EXPORT = "export"
    IMPORT = "import"


class TradeMode(StrEnum):
    """Customs supervision modes for cross-border e-commerce."""
    B2C_DIRECT = "9610"        # 跨境电商直购 (B2C, parcels)
    B2B_DIRECT = "9710"        # 跨境电商B2B直接出口
    B2B_OVERSEAS_WH = "9810"   # 跨境电商出口海外仓
    BONDED = "1210"            # 保税跨境贸易电子商务


B2B_MODES = {TradeMode.B2B_DIRECT.value, TradeMode.B2B_OVERSEAS_WH.value}


class Verdict(StrEnum):
    VERIFIED = "verified"
    MISMATCH = "mismatch"
    INCOMPLETE = "incomplete"


class DocumentSource(StrEnum):
    CEB_XML = "ceb_xml"
    CSV = "csv"
    JSON = "json"
    FORM = "form"
