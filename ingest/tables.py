"""Tables as lines that keep their column names: one "column: value; column: value" line per row.

A passage cut from the middle of a long table then still says what each value is ("Price: 12 EUR"
rather than a bare "12 EUR"), which is what both the keyword index and the embedding model need to
match a question about it.  Used for CSV and Excel sheets, and for the tables of Word and HTML
files (which unstructured hands over as HTML).
"""

from __future__ import annotations

import datetime
from html.parser import HTMLParser

# A cell holding more than this many characters is prose, not a value: a "table" used for page
# layout, whose rows are better read as paragraphs.
_MAX_CELL_CHARS = 400


def row_lines(rows: list[list[str]]) -> list[str]:
    """The table's lines: rows above the header row (a title) as they are, then each data row as
    "column: value; ..." with empty cells left out.  The header is the first row that fills at
    least half the table's width, so a title row or a blank row above it is not taken for it."""
    rows = [[cell.strip() for cell in row] for row in rows]
    rows = [row for row in rows if any(row)]
    if not rows:
        return []
    width = max(sum(1 for cell in row if cell) for row in rows)
    at = next(i for i, row in enumerate(rows) if sum(1 for cell in row if cell) * 2 >= width)
    lines = [" ".join(cell for cell in row if cell) for row in rows[:at]]
    header = rows[at]
    if at == len(rows) - 1:  # a header alone
        return lines + [", ".join(cell for cell in header if cell)]
    for row in rows[at + 1:]:
        if any(len(cell) > _MAX_CELL_CHARS for cell in row):
            lines.extend(cell for cell in row if cell)
            continue
        cells = [f"{header[i] if i < len(header) and header[i] else f'column {i + 1}'}: {value}"
                 for i, value in enumerate(row) if value]
        lines.append("; ".join(cells))
    return lines


def cell_text(value: object) -> str:
    """A spreadsheet value as a person would type it: 12 not 12.0, a date without 00:00:00."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime) and value.time() == datetime.time():
        return value.date().isoformat()
    return str(value)


def html_table(html: str) -> tuple[str | None, list[list[str]]]:
    """(caption, rows of cell texts) of the first table in `html`; a cell spanning several
    columns is repeated in each, so values stay under their headers."""
    parser = _TableParser()
    parser.feed(html)
    parser.close()
    return (" ".join(parser.caption.split()) or None), parser.rows


class _TableParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self.caption = ""
        self._cell: list[str] | None = None
        self._span = 1
        self._in_caption = False
        self._depth = 0  # nested tables: their text stays in the outer cell

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._depth += 1
        elif self._depth > 1:
            return
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
            span = dict(attrs).get("colspan") or "1"
            self._span = min(int(span), 50) if span.isdigit() and int(span) > 0 else 1
        elif tag == "caption":
            self._in_caption = True
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag):
        if tag == "table":
            self._depth -= 1
        elif self._depth > 1:
            return
        elif tag in ("td", "th") and self._cell is not None:
            if not self.rows:
                self.rows.append([])
            self.rows[-1].extend([" ".join("".join(self._cell).split())] * self._span)
            self._cell = None
        elif tag == "caption":
            self._in_caption = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        elif self._in_caption:
            self.caption += data
