"""Reading the TSV files the evaluations take (pairs, retrieval, attribute labels).

A file that cannot be read, a row short of a column or a value its column cannot hold is a
:class:`~lookalike.errors.ManifestError` naming the file, the line and the reason — the one
clean message the CLI prints — never a ``KeyError`` or ``ValueError`` traceback from deep in
a reader (a short row of a ``csv.DictReader`` holds ``None``, which failed far from the line
that caused it)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from ..errors import ManifestError

TRUE_WORDS = frozenset({"1", "true", "yes", "same"})
FALSE_WORDS = frozenset({"0", "false", "no", "different"})


def read_lines(path: Path) -> list[str]:
    """The lines of the UTF-8 text file ``path``."""
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ManifestError.unreadable(path, err) from err
    except UnicodeDecodeError as err:
        raise ManifestError(f"{path}: not UTF-8 text (byte {err.start})") from err


def tsv_rows(path: Path, lines: list[str], required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, row)`` of the tab-separated ``lines`` of ``path``, whose header has the
    ``required`` columns and whose every row a value in each of them."""
    reader = csv.DictReader(lines, delimiter="\t")
    if not reader.fieldnames or not set(required) <= set(reader.fieldnames):
        raise ManifestError(f"{path}: needs the columns {', '.join(required)} (tab-separated, in its first line)")
    for row in reader:
        number = reader.line_num
        missing = [column for column in required if not (row.get(column) or "").strip()]
        if missing:
            raise ManifestError(f"{path}:{number}: no {', '.join(missing)} in this row")
        yield number, {k: v.strip() if isinstance(v, str) else v for k, v in row.items() if k is not None}


def truth(path: Path, number: int, column: str, value: str) -> bool:
    """A yes/no column's value: 1 / true / yes / same or 0 / false / no / different."""
    word = value.strip().lower()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    raise ManifestError(f"{path}:{number}: {column} {value!r} is neither 1 nor 0")


def whole_number(path: Path, number: int, what: str, value: str) -> int:
    """``value`` as a whole number, or an error naming the line and ``what`` it is."""
    try:
        return int(value)
    except ValueError as err:
        raise ManifestError(f"{path}:{number}: {what} {value!r} is not a whole number") from err
