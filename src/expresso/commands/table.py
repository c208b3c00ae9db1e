"""Plain text tables as ``expresso runs`` and ``runs compare`` print them: columns two spaces apart, long values shortened.

Plain text rather than a rich table: cells split on runs of two spaces read
back (tests, ``awk``), and a closed pipe ends the command quietly.
"""

from __future__ import annotations

from typing import Any

VALUE_WIDTH = 32  # a longer setting is shortened in the middle, unless that would make two values look alike


def print_table(rows: list[list[str]]) -> None:
    """Rows of cells in columns two spaces apart, each as wide as its widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def text(value: Any) -> str:
    return "-" if value is None else str(value)


def distinct_short(texts: list[str], width: int = VALUE_WIDTH) -> list[str]:
    """A column's values shortened in the middle (both ends kept); in full if that would make two different ones look alike."""
    short = [_middle(text, width) for text in texts]
    return short if len(set(short)) == len(set(texts)) else texts


def _middle(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    head = (width - 3) // 2
    return text[:head] + "..." + text[len(text) - (width - 3 - head) :]
