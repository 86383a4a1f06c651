"""What an import did, for the CLI to print (and ``--json`` to show)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class ImportSummary:
    file: str
    rows: int
    created: int
    updated: int
    unchanged: int
    movements: int = 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def describe(self, noun: str) -> str:
        text = (
            f"{self.file}: {self.rows} {noun} row(s): {self.created} created, "
            f"{self.updated} updated, {self.unchanged} unchanged"
        )
        if self.movements:
            text += f"; {self.movements} movement(s) written"
        return text
