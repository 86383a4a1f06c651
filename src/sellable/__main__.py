from __future__ import annotations

from sellable.cli import main

main()
