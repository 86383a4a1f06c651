"""Bulk in-memory work with CPython's automatic garbage collection paused: see
:mod:`sellable.sdk._collection` (in the SDK, so that a connector can resume collection for
a long run of requests inside the framework's pause)."""

from __future__ import annotations

from sellable.sdk._collection import collection_paused, collection_resumed

__all__ = ["collection_paused", "collection_resumed"]
