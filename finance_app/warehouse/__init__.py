"""Warehouses, electronic warehouse receipts and their pledges."""
