"""Reading merchants' CSV files: strict columns, line numbers, every bad row reported at once."""

from __future__ import annotations

import csv
import difflib
import os
import unicodedata
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TypeVar

from sellable.config import shown_path
from sellable.errors import InputError

T = TypeVar("T")

MAX_REPORTED_ERRORS = 50

Progress = Callable[[int], None]
"""Called with the number of bytes read so far."""


class RowRejected(ValueError):
    """A value in a row is bad; carries the column so the message can name it."""

    def __init__(self, column: str, value: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.value = value
        self.reason = reason


def _parse_problem(err: csv.Error) -> str:
    """What the CSV reader could not parse, for a merchant."""
    if "unexpected end of data" in str(err):
        return (
            "a quoted field opened on this line is never closed (the file ends inside the "
            'quotes); close it with " or remove the stray quote'
        )
    return f"cannot parse: {err}"


class CsvFile:
    """A CSV file with a header row, checked against the columns a command accepts.

    Iterating yields ``(line number, row)``, where a row maps every known column to
    its stripped value ("" when absent). Problems are collected with :meth:`reject`
    and raised together by :meth:`raise_errors`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        required: tuple[str, ...],
        optional: tuple[str, ...] = (),
        progress: Progress | None = None,
    ) -> None:
        self.path = Path(path)
        self.name = shown_path(path)
        self.required = required
        self.optional = optional
        self.progress = progress
        try:
            self.size = self.path.stat().st_size if self.path.is_file() else 0
        except OSError:  # a path too long, say: reported when the file is opened
            self.size = 0
        self.errors: list[str] = []
        self.columns: tuple[str, ...] = ()  # the header, once iteration started
        self._error_count = 0

    def __iter__(self) -> Iterator[tuple[int, dict[str, str]]]:
        try:
            handle = self.path.open(newline="", encoding="utf-8-sig")
        except FileNotFoundError:
            raise InputError(f"{self.name}: file not found") from None
        except OSError as err:
            raise InputError(f"{self.name}: cannot read: {err.strerror}") from None
        with handle:
            # Strict: a stray or unclosed quote is an error at its line, not a field that
            # silently swallows the rest of the file.
            reader = csv.reader(handle, strict=True)
            try:
                header = next(reader)
            except StopIteration:
                raise InputError(f"{self.name}: empty file (expected a header row)") from None
            except UnicodeDecodeError:
                raise self._not_utf8() from None
            except csv.Error as err:
                raise InputError(f"{self.name} line 1: {_parse_problem(err)}") from None
            columns = self._check_header([h.strip() for h in header])
            width = len(columns)
            known = (*self.required, *self.optional)
            line = 1  # where the record being read starts (a quoted field may span lines)
            try:
                for count, values in enumerate(reader, 1):
                    start, line = line + 1, reader.line_num
                    if not values or (len(values) == 1 and not values[0].strip()):
                        continue  # blank line
                    if len(values) != width:
                        self.reject(
                            start,
                            None,
                            None,
                            f"expected {width} fields like the header, found {len(values)}",
                        )
                        continue
                    row = dict.fromkeys(known, "")
                    for column, value in zip(columns, values, strict=True):
                        row[column] = value.strip()
                    if self._has_nul(start, row):
                        continue
                    yield start, row
                    if self.progress is not None and count % 20000 == 0:
                        self.progress(handle.tell() if handle.seekable() else 0)
            except UnicodeDecodeError:
                # The text is decoded ahead of the rows, so the row being read is not where
                # the bad byte is: find it in the file itself.
                raise self._not_utf8() from None
            except csv.Error as err:
                raise InputError(f"{self.name} line {line + 1}: {_parse_problem(err)}") from None
        if self.progress is not None:
            self.progress(self.size)

    def _has_nul(self, line: int, row: dict[str, str]) -> bool:
        """A NUL byte in any field (no database stores one in text) rejects the row."""
        found = False
        for column, value in row.items():
            if "\x00" in value:
                self.reject(line, column, value, "contains a NUL byte (\\x00)")
                found = True
        return found

    def _not_utf8(self) -> InputError:
        """The first byte that is not UTF-8, by line and offset, and what to do about it."""
        offset = 0
        number = 1  # physical line, counted as the CSV reader does: \n, \r\n or a lone \r
        with self.path.open("rb") as raw:
            # A line break byte is never part of a multi-byte UTF-8 character, so the file
            # can be checked line by line.
            for data in raw:
                try:
                    data.decode("utf-8")
                except UnicodeDecodeError as err:
                    at = offset + err.start
                    before = data[: err.start]
                    number += before.count(b"\r")  # lone \r before the byte (\n ends `data`)
                    column = err.start - max(before.rfind(b"\r"), -1)
                    return InputError(
                        f"{self.name} line {number}: not UTF-8 text: byte 0x{data[err.start]:02X} "
                        f"at byte offset {at} of the file (column {column} of the line) "
                        "cannot be read; save the file as UTF-8 (in a spreadsheet: "
                        "'CSV UTF-8') and import it again"
                    )
                offset += len(data)
                number += data.count(b"\r") - data.count(b"\r\n") + data.count(b"\n")
        return InputError(f"{self.name}: not UTF-8 text; save the file as UTF-8")

    def _check_header(self, header: list[str]) -> list[str]:
        known = (*self.required, *self.optional)
        problems = []
        for column in header:
            if column not in known:
                guess = difflib.get_close_matches(column, known, n=1)
                hint = f"; did you mean {guess[0]!r}?" if guess else f" (known: {', '.join(known)})"
                problems.append(f"{self.name} line 1: unknown column {column!r}{hint}")
        seen: set[str] = set()
        for column in header:
            if column in seen:
                problems.append(f"{self.name} line 1: column {column!r} appears twice")
            seen.add(column)
        missing = [c for c in self.required if c not in header]
        if missing:
            problems.append(
                f"{self.name} line 1: missing column(s) {', '.join(map(repr, missing))} "
                f"(required: {', '.join(self.required)})"
            )
        if problems:
            raise InputError("\n".join(problems))
        self.columns = tuple(header)
        return header

    def reject(self, line: int, column: str | None, value: str | None, reason: str) -> None:
        """Record a bad row; the import fails at :meth:`raise_errors`."""
        self._error_count += 1
        if len(self.errors) >= MAX_REPORTED_ERRORS:
            return
        where = f"{self.name} line {line}"
        if column is not None:
            where += f", column {column!r}"
        if value is not None:
            reason += f" (value {value!r})"
        self.errors.append(f"{where}: {reason}")

    def field(self, line: int, parse: Callable[[str, str], T], column: str, value: str) -> T | None:
        """Parse one value; on failure record it and return None."""
        try:
            return parse(column, value)
        except RowRejected as err:
            self.reject(line, err.column, err.value, err.reason)
            return None

    def raise_errors(self) -> None:
        if not self._error_count:
            return
        more = self._error_count - len(self.errors)
        tail = f"\n... and {more} more" if more > 0 else ""
        raise InputError(
            "\n".join(self.errors)
            + tail
            + f"\n{self.name}: rejected ({self._error_count} problem(s)); nothing was written"
        )


# -- value parsers: (column, raw value) -> parsed, raising RowRejected ---------------------------


# Bounds the store's columns can hold on every database, checked before anything is written.
MAX_QUANTITY = 1_000_000_000
MAX_CODE_LENGTH = 255
MAX_PRICE = Decimal("9999999999")
#: The longest numeric text read (a quantity has at most 10 digits; a spreadsheet's
#: "1000000000.000000" fits).
MAX_NUMBER_LENGTH = 40
PRICE_PLACES = 4


def required_text(column: str, value: str) -> str:
    """A code (SKU, order id, slot...): not empty, at most 255 characters, no control
    characters (see :func:`identifier`)."""
    if not value:
        raise RowRejected(column, value, "must not be empty")
    if len(value) > MAX_CODE_LENGTH:
        raise RowRejected(
            column, value[:40] + "…", f"is {len(value)} characters long (at most {MAX_CODE_LENGTH})"
        )
    return identifier(column, value)


def identifier(column: str, value: str) -> str:
    """A code may not hold a control character (NUL, a tab, a line break, DEL, C1): it
    would be invisible in every table and message, and never match what a channel sends."""
    for position, char in enumerate(value, 1):
        if unicodedata.category(char) == "Cc":
            raise RowRejected(
                column,
                value,
                f"contains the control character U+{ord(char):04X} at position {position} "
                "(codes may not hold control characters)",
            )
    return value


def positive_int(column: str, value: str) -> int:
    number = _int(column, value)
    if number <= 0:
        raise RowRejected(column, value, "must be a positive integer")
    return number


def non_negative_int(column: str, value: str) -> int:
    number = _int(column, value)
    if number < 0:
        raise RowRejected(column, value, "must be zero or a positive integer")
    return number


def _int(column: str, value: str) -> int:
    number = _parse_int(column, value)
    if abs(number) > MAX_QUANTITY:
        raise RowRejected(column, value, f"is out of range (at most {MAX_QUANTITY:,})")
    return number


def _parse_int(column: str, value: str) -> int:
    if not value:
        raise RowRejected(column, value, "must not be empty")
    if len(value) > MAX_NUMBER_LENGTH:  # int() of a long digit string is slow, then refused
        raise RowRejected(column, value[:40] + "…", f"is out of range (at most {MAX_QUANTITY:,})")
    try:
        return int(value)
    except ValueError:
        pass
    try:
        as_decimal = Decimal(value)
    except InvalidOperation:
        raise RowRejected(column, value, "must be an integer") from None
    if not as_decimal.is_finite():  # inf, -Infinity, NaN, sNaN
        raise RowRejected(column, value, "must be a finite number")
    if as_decimal.adjusted() >= 10:  # 1e999999999: refused before int() expands it
        raise RowRejected(column, value, f"is out of range (at most {MAX_QUANTITY:,})")
    if as_decimal == as_decimal.to_integral_value():  # "3.0" from a spreadsheet
        return int(as_decimal)
    raise RowRejected(column, value, "must be a whole number")


_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0", ""}


def boolean(column: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise RowRejected(column, value, "must be true or false")


def optional_boolean(column: str, value: str) -> bool | None:
    """Empty means "not set" (None)."""
    return None if not value else boolean(column, value)


def optional_decimal(column: str, value: str) -> Decimal | None:
    if not value:
        return None
    if len(value) > MAX_NUMBER_LENGTH:
        raise RowRejected(column, value[:40] + "…", f"is out of range (at most {MAX_PRICE})")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise RowRejected(column, value, "must be a decimal number") from None
    if not number.is_finite():
        raise RowRejected(column, value, "must be a finite decimal number")
    # adjusted() first: abs() of 1e999999999 overflows the decimal context
    if number.adjusted() >= len(str(MAX_PRICE)) or abs(number) > MAX_PRICE:
        raise RowRejected(column, value, f"is out of range (at most {MAX_PRICE})")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -PRICE_PLACES:
        raise RowRejected(column, value, f"has more than {PRICE_PLACES} decimal places")
    return number


def currency_cell(column: str, value: str) -> str:
    """An ISO 4217 currency code (three letters; upper-cased)."""
    code = value.strip().upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise RowRejected(column, value, "must be a three-letter currency code (ISO 4217)")
    return code


def iso_date(column: str, value: str) -> date:
    """A calendar date, YYYY-MM-DD."""
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise RowRejected(column, value, "must be a date, YYYY-MM-DD") from None


def iso_moment(column: str, value: str, zone: tzinfo = UTC) -> datetime:
    """An ISO 8601 date or time; a date is its midnight and a time without an offset is in
    ``zone``."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=zone)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RowRejected(column, value, "must be an ISO 8601 date or time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def exchange_rate(column: str, value: str) -> Decimal:
    """A decimal number above zero with at most 10 decimal places (an exchange rate)."""
    text = value.strip()
    if not text or len(text) > MAX_NUMBER_LENGTH:
        raise RowRejected(column, value[:40], "must be a decimal number above zero")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise RowRejected(column, value, "must be a decimal number") from None
    if not number.is_finite() or number <= 0 or number.adjusted() > 8:
        raise RowRejected(column, value, "must be a decimal number above zero, below 1e9")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -10:
        raise RowRejected(column, value, "has more than 10 decimal places")
    return number
