"""Costing and traceability: cost layers on the ledger, COGS, valuation, lots.

See :mod:`sellable.costing.layers` for the layer rules and :mod:`sellable.costing.money`
for how amounts are kept exact.
"""
