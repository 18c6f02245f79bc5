"""Text that ends up in records people read holds no control or format characters.

Unicode's Cc (controls: NUL, escape sequences, bell) and Cf (format: zero-width spaces,
bidirectional overrides that make a record read differently from what it holds) are refused,
tab and the joiners excepted; multi-line fields (descriptions, notes, updates) also keep their
line breaks, "\\n" and "\\r\\n". (PostgreSQL refuses a NUL outright; refusing every control
here keeps SQLite equal.)
"""

from __future__ import annotations

import unicodedata

from pydantic import AfterValidator

HIDDEN_CATEGORIES = frozenset({"Cc", "Cf"})
# The zero-width non-joiner and joiner are format characters that real text needs: Persian and
# Indic words are spelt with them, and emoji sequences are joined by them.
JOINERS = "\u200c\u200d"


def _refuse_hidden(text: str, allowed: str) -> None:
    for character in text:
        if character not in allowed and unicodedata.category(character) in HIDDEN_CATEGORIES:
            breaks = " and line breaks" if "\n" in allowed else ""
            raise ValueError(
                f"holds the control or format character U+{ord(character):04X}; "
                f"only tab{breaks} may appear"
            )


def single_line(value: str) -> str:
    _refuse_hidden(value, "\t" + JOINERS)
    return value


def multi_line(value: str) -> str:
    _refuse_hidden(value.replace("\r\n", "\n"), "\t\n" + JOINERS)
    return value


SingleLine = AfterValidator(single_line)
MultiLine = AfterValidator(multi_line)
