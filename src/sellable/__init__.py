"""Sellable: keep every sales channel showing the quantity a merchant can really sell."""

from __future__ import annotations

__version__ = "0.1.0"
