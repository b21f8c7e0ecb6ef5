"""Tables as lines that keep their column names: one "column: value; column: value" line per row.

A passage cut from the middle of a long table then still says what each value is ("Price: 12 EUR"
rather than a bare "12 EUR"), which is what both the keyword index and the embedding model need to
match a question about it.  Used for CSV and Excel sheets, and for the tables of Word and HTML
files (which unstructured hands over as HTML).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
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


# --- tables in PDF text layers -----------------------------------------------------------------

_GAP = re.compile(r"\S+(?: \S+)*")  # a cell: words separated by single spaces
_MIN_COLUMNS = 3  # two columns side by side are as likely a two-column page as a table
_MIN_ROWS = 2  # under the header


@dataclass
class TextTable:
    """A table found in a PDF page's layout text: its rows (the header first) and the lines the
    page's plain text shows for it (cells joined by single spaces), to replace them there."""

    rows: list[list[str]]
    plain_lines: list[str] = field(default_factory=list)


def _cells(line: str) -> list[tuple[int, str]]:
    """(start column, text) of each cell of a layout line: runs of text between 2+ spaces."""
    return [(match.start(), match.group()) for match in _GAP.finditer(line)]


def layout_tables(layout: str) -> list[TextTable]:
    """Tables in a page's text laid out in columns (pypdf's extraction_mode="layout"): a line of
    at least three cells (the header) followed by at least two lines whose cells all start under
    one of its columns.  A line with nothing in the first column continues the row above (a cell
    wrapped onto two lines)."""
    lines = [line for line in layout.splitlines() if line.strip()]
    tables: list[TextTable] = []
    i = 0
    while i < len(lines):
        header = _cells(lines[i])
        if len(header) < _MIN_COLUMNS:
            i += 1
            continue
        starts = [s for s, _ in header]
        table = TextTable(rows=[[t for _, t in header]], plain_lines=[" ".join(t for _, t in header)])
        j = i + 1
        while j < len(lines):
            cells = _cells(lines[j])
            columns = [_column(starts, s) for s, _ in cells]
            if not cells or None in columns or len(set(columns)) != len(columns):
                break
            if len(cells) == 1 and columns[0] == 0:  # a line of prose after the table
                break
            if any(c + 1 < len(starts) and s + len(t) > starts[c + 1] + 1
                   for c, (s, t) in zip(columns, cells)):  # text running across a column
                break
            row = [""] * len(starts)
            for column, (_, text) in zip(columns, cells):
                row[column] = text
            if columns[0] != 0 and len(table.rows) > 1:  # a wrapped cell: continue the row above
                above = table.rows[-1]
                table.rows[-1] = [f"{a} {b}".strip() for a, b in zip(above, row)]
            else:
                table.rows.append(row)
            table.plain_lines.append(" ".join(t for _, t in cells))
            j += 1
        if len(table.rows) > _MIN_ROWS:
            tables.append(table)
            i = j
        else:
            i += 1
    return tables


def _column(starts: list[int], start: int, slack: int = 3) -> int | None:
    """The header column a cell starting at `start` belongs to: the last one starting at or
    before it (with some slack for right-aligned numbers), or None when it starts before the
    first column."""
    found = None
    for index, column_start in enumerate(starts):
        if start + slack >= column_start:
            found = index
    return found
