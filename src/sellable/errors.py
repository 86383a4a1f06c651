"""Every error Sellable raises on purpose, grouped by what the caller should do.

    SellableError
    ├── ConfigError        fix the configuration file or environment, then start again
    ├── InputError         a file or record was rejected whole; nothing was written
    │   └── CatalogError   the catalog itself is inconsistent (BOM cycle, component of a simple SKU)
    └── StoreError         the database is unreachable or its schema is not what we expect

Messages name the thing and the value, e.g.
``products.csv line 7, column 'kind': unknown kind 'kitt' (expected one of: ...)``.
"""

from __future__ import annotations


class SellableError(Exception):
    """Base of every error raised on purpose by Sellable."""

    exit_code = 1


class ConfigError(SellableError):
    """The configuration is invalid; the message names the file, the key path and the reason."""

    exit_code = 2


class InputError(SellableError):
    """Input was rejected as a whole; nothing of it was written."""

    exit_code = 3


class CatalogError(InputError):
    """The catalog is inconsistent: a BOM cycle, a component of a simple SKU, an unknown SKU."""


class StoreError(SellableError):
    """The database cannot be used: unreachable, or its schema is behind the code."""

    exit_code = 4
