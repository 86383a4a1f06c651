"""The ``sellable`` command line.

Exit codes: 0 success; 1 unexpected failure; 2 usage or configuration error;
3 input rejected (bad CSV row, unknown SKU or channel, BOM cycle); 4 database unusable
(unreachable, missing, or without its schema).
"""

from __future__ import annotations

from sellable.cli.app import cli


def main() -> None:
    cli(prog_name="sellable")


__all__ = ["cli", "main"]

if __name__ == "__main__":  # pragma: no cover
    main()
