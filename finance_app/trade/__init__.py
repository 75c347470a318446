"""Trade evidence: orders, payments, waybills, inventories and three-document matching."""
