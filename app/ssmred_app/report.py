"""Run reports: one document model written as Markdown (and as HTML through markdown-it-py), numbers read
from ``metrics.json``.

A report is built only from the metrics mapping that is also written to ``metrics.json`` (the
numbers in its tables are stored there already rounded), so the two can never disagree.

Examples
--------
>>> doc = Doc("Title")
>>> doc.table(["a", "b"], [[1, "x"]])
>>> print(doc.markdown())
# Title
<BLANKLINE>
| a | b |
|---|---|
| 1 | x |
<BLANKLINE>
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Doc", "fmt", "format_table", "markdown_tables", "pct", "write_json", "write_report"]


def fmt(x: Any, digits: int = 2) -> str:
    """Format a number for a table (``n/a`` for ``None``/NaN; ints unchanged).

    Parameters
    ----------
    x
        The value. ``None`` and a float NaN give ``n/a``; ``bool`` and ``int`` are written as they are; a
        float keeps its shortest ``repr`` unless that has an exponent or more than ``digits`` decimals, in
        which case it is written in fixed point with ``digits`` decimals — or with three significant digits
        when fixed point would show a non-zero value as zero (or needs 16 or more digits); anything else is
        ``str(x)``.
    digits
        Decimals kept when a float is rounded (>= 0).

    Returns
    -------
    str
        The table cell.

    Examples
    --------
    >>> fmt(3.14159), fmt(2.5), fmt(None), fmt(7)
    ('3.14', '2.5', 'n/a', '7')
    >>> fmt(1e-5), fmt(0.004), fmt(0.0), fmt(1e20)
    ('1e-05', '0.004', '0.0', '1e+20')
    """
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return "n/a"
        short = repr(x)
        if "e" in short or len(short.split(".")[-1]) > digits:
            if x != 0 and math.isfinite(x) and (abs(x) < 0.5 * 10.0**-digits or abs(x) >= 1e15):
                return f"{x:.3g}"  # fixed point would print 0.00 (or 16+ digits): three significant ones
            return f"{x:.{digits}f}"
        return short
    return str(x)


def pct(x: float | None) -> str:
    """A fraction as a percentage with one decimal, as the run logs print it (``n/a`` for ``None`` or NaN).

    Parameters
    ----------
    x
        The fraction (``1.0`` is 100 %), or ``None``.

    Returns
    -------
    str
        :math:`100x` with one decimal and a percent sign, e.g. ``54.3 %``; ``n/a`` for ``None`` or NaN.

    Examples
    --------
    >>> pct(0.5432), pct(None), pct(float("nan"))
    ('54.3 %', 'n/a', 'n/a')
    """
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f} %"


@dataclass
class Doc:
    """A small document: headings, paragraphs, tables, images and code blocks.

    Parameters
    ----------
    title
        Level-1 heading.
    blocks
        The content in order, as ``(kind, value)`` pairs appended by the methods below (``h``, ``p``,
        ``ul``, ``table``, ``img``, ``code``); empty by default.
    """

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def h(self, text: str, level: int = 2) -> None:
        """Add a heading.

        Parameters
        ----------
        text
            The heading.
        level
            Markdown heading level (number of ``#``), 2 by default; 1 is the level of the title.
        """
        self.blocks.append(("h", (level, text)))

    def p(self, text: str) -> None:
        """Add a paragraph (``**bold**`` and ``code`` spans are rendered in HTML).

        Parameters
        ----------
        text
            The paragraph, as Markdown inline text.
        """
        self.blocks.append(("p", text))

    def bullets(self, items: Sequence[str]) -> None:
        """Add a bullet list.

        Parameters
        ----------
        items
            One Markdown inline text per bullet (copied).
        """
        self.blocks.append(("ul", list(items)))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Add a table; cells are formatted with :func:`fmt`.

        Parameters
        ----------
        headers
            Column headings (converted with ``str``).
        rows
            One sequence of cells per row, each as long as ``headers``; formatted now, with :func:`fmt`'s
            default two decimals.
        """
        self.blocks.append(("table", ([str(h) for h in headers], [[fmt(c) for c in row] for row in rows])))

    def image(self, path: str, alt: str) -> None:
        """Add an image (path relative to the report).

        Parameters
        ----------
        path
            The image file, relative to the folder the report is written to (e.g. ``plots/x.png``).
        alt
            Alternative text.
        """
        self.blocks.append(("img", (path, alt)))

    def code(self, text: str) -> None:
        """Add a preformatted block.

        Parameters
        ----------
        text
            The block, verbatim (trailing newlines are dropped when rendered).
        """
        self.blocks.append(("code", text))

    def markdown(self) -> str:
        """Render as GitHub-flavoured Markdown."""
        out = [f"# {self.title}", ""]
        for kind, val in self.blocks:
            if kind == "h":
                out += ["#" * val[0] + " " + val[1], ""]
            elif kind == "p":
                out += [val, ""]
            elif kind == "ul":
                out += [f"- {it}" for it in val] + [""]
            elif kind == "table":
                headers, rows = val
                out.append("| " + " | ".join(headers) + " |")
                out.append("|" + "|".join("---" for _ in headers) + "|")
                out += ["| " + " | ".join(r) + " |" for r in rows]
                out.append("")
            elif kind == "img":
                out += [f"![{val[1]}]({val[0]})", ""]
            elif kind == "code":
                out += ["```", val.rstrip("\n"), "```", ""]
        return "\n".join(out)

    def html(self) -> str:
        """Render as a standalone HTML page: :meth:`markdown` through markdown-it-py (CommonMark + tables)."""
        from markdown_it import MarkdownIt

        body = MarkdownIt("commonmark", {"html": False}).enable("table").render(self.markdown())
        style = (
            "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
            "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
            "text-align:right}th{background:#f3f3f3}img{max-width:100%}pre{background:#f6f6f6;padding:8px;"
            "overflow-x:auto}code{background:#f3f3f3}"
        )
        return (
            "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.title)}</title><style>{style}</style></head>\n<body>\n"
            + body
            + "</body></html>\n"
        )


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """Plain-text table for the terminal.

    Parameters
    ----------
    rows
        One mapping per row, holding every key of ``columns``; values are formatted with :func:`fmt`.
    columns
        ``(key, header)`` pairs, in display order.

    Returns
    -------
    str
        The header, a line of dashes and one line per row, columns two spaces apart; the first column
        left-aligned, the others right-aligned.

    Raises
    ------
    KeyError
        If a row lacks a key of ``columns``.
    """
    cells = [[h for _, h in columns]] + [[fmt(r[k]) for k, _ in columns] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Write JSON (NaN written as ``NaN``, numpy scalars converted).

    Parameters
    ----------
    obj
        JSON-able data; numpy scalars and arrays are converted to Python numbers and lists.
    path
        The file; missing parent folders are created, an existing file is overwritten.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    TypeError
        For a value that is neither JSON-able nor a numpy scalar or array.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(obj, indent=1, default=_json_default))
    return p


def write_report(doc: Doc, out: str | os.PathLike[str], *, stem: str = "report") -> tuple[Path, Path]:
    """Write ``<stem>.md`` and ``<stem>.html`` into ``out``.

    Parameters
    ----------
    doc
        The document.
    out
        Folder.
    stem
        File name without suffix.

    Returns
    -------
    tuple of pathlib.Path
        The Markdown and HTML files.
    """
    o = Path(out)
    o.mkdir(parents=True, exist_ok=True)
    md = o / f"{stem}.md"
    md.write_text(doc.markdown())
    ht = o / f"{stem}.html"
    ht.write_text(doc.html())
    return md, ht


def markdown_tables(text: str) -> list[list[list[str]]]:
    r"""Parse the pipe tables of a Markdown text (header row first) -- used by tests and scripts.

    Parameters
    ----------
    text
        Markdown; a table is a run of consecutive lines that start and end with ``|``.

    Returns
    -------
    list of list of list of str
        One entry per table, in order: its rows (delimiter rows such as ``|---|:-:|`` left out), each a list
        of stripped cell texts.

    Examples
    --------
    >>> text = "\n".join(["| a | b |", "|---|---|", "| 1 | 2 |"])
    >>> markdown_tables(text)
    [[['a', 'b'], ['1', '2']]]
    """
    tables: list[list[list[str]]] = []
    cur: list[list[str]] = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("|") and s.endswith("|"):
            cells = [c.strip() for c in s[1:-1].split("|")]
            if all(set(c) <= {"-", ":"} and c for c in cells):
                continue
            cur.append(cells)
        elif cur:
            tables.append(cur)
            cur = []
    if cur:
        tables.append(cur)
    return tables
