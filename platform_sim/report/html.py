"""The HTML page of a report: one self-contained file (inline CSS, figures as base64 PNG, no
scripts, fonts or links to fetch), valid HTML5, every text escaped with :func:`html.escape`.

The helpers here know nothing about trials: they turn text, tables and figures into page
fragments (strings of HTML). :mod:`platform_sim.report.build` decides what goes on the page.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 0 auto;
       max-width: 1100px; padding: 1em 1.5em 3em; color: #1d1d1d; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.3em; border-bottom: 2px solid #d0d7de; padding-bottom: 0.2em; margin-top: 1.8em; }
h3 { font-size: 1.08em; margin-top: 1.3em; }
p.lead { color: #444; margin-top: 0; }
nav ul { columns: 3; list-style: none; padding-left: 0; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.86em; }
caption { text-align: left; font-weight: 600; padding: 0.3em 0; caption-side: top; }
th, td { border: 1px solid #d0d7de; padding: 0.25em 0.55em; vertical-align: top; }
th { background: #f3f5f7; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr:nth-child(even) td { background: #fafbfc; }
figure { margin: 1em 0 1.6em; }
figure img { max-width: 100%; height: auto; border: 1px solid #e5e8eb; }
figcaption { font-size: 0.9em; color: #333; margin-top: 0.4em; }
details { margin: 0.5em 0 1em; }
summary { cursor: pointer; color: #0b4f8a; }
.wide { overflow-x: auto; }
code { background: #f3f5f7; padding: 0 0.25em; border-radius: 3px; }
footer { margin-top: 2.5em; border-top: 2px solid #d0d7de; font-size: 0.9em; }
.note { color: #555; font-size: 0.92em; }
"""


def esc(text) -> str:
    """Escape any value for HTML text or attributes."""
    return html.escape("" if text is None else str(text), quote=True)


def para(text: str, cls: str | None = None) -> str:
    attr = f' class="{esc(cls)}"' if cls else ""
    return f"<p{attr}>{esc(text)}</p>"


def heading(level: int, text: str) -> str:
    return f"<h{level}>{esc(text)}</h{level}>"


def bullets(items: Iterable[str]) -> str:
    items = [f"<li>{esc(i)}</li>" for i in items if i]
    return f"<ul>{''.join(items)}</ul>" if items else ""


def section(section_id: str, title: str, *parts: str) -> str:
    return f'<section id="{esc(section_id)}">{heading(2, title)}{"".join(parts)}</section>'


def details(summary: str, *parts: str) -> str:
    return f"<details><summary>{esc(summary)}</summary>{''.join(parts)}</details>"


def figure(figure_id: str, png_base64: str, alt: str, caption: str) -> str:
    """A figure with its image embedded as a data URI and a caption."""
    return (f'<figure id="{esc(figure_id)}"><img src="data:image/png;base64,{png_base64}" alt="{esc(alt)}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def fmt(value, digits: int = 3) -> str:
    """A number with ``digits`` decimals (whole numbers without), 'NA' for a missing one."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if is_number(value):
        if not math.isfinite(float(value)):
            return "NA"
        if float(value).is_integer() and abs(float(value)) >= 1:
            return f"{int(value):,}"
        return f"{float(value):.{digits}f}"
    return str(value)


def setting(value) -> str:
    """A configuration value as written in a design or scenario (0.5, 120, 0.025), not rounded."""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if is_number(value):
        return f"{value:,}" if isinstance(value, (int, np.integer)) else f"{float(value):.6g}"
    return "" if value is None else str(value)


def pm(value, mcse, digits: int = 3) -> str:
    """``value ± MCSE`` with ``digits`` decimals, as the command line prints it, or more decimals when
    the MCSE would otherwise print as zero (16.63 ± 0.04, not 16.6 ± 0.0); 'NA' when the value is missing."""
    if value is None or not is_number(value) or not math.isfinite(float(value)):
        return "NA"
    if mcse is None or not is_number(mcse) or not math.isfinite(float(mcse)):
        return f"{float(value):.{digits}f}"
    mcse = float(mcse)
    if 0 < mcse < 0.5 * 10.0**-digits:
        digits = min(-math.floor(math.log10(mcse)), digits + 3)
    return f"{float(value):.{digits}f} ± {mcse:.{digits}f}"


def table(header: Sequence[str], rows: Iterable[Sequence], caption: str | None = None,
          numeric: Sequence[bool] | None = None, table_id: str | None = None) -> str:
    """A table from a header and rows of cells (already formatted strings, or values shown with
    :func:`fmt`). ``numeric[i]`` right-aligns column i (default: guessed from the cells)."""
    rows = [[c if isinstance(c, str) else fmt(c) for c in r] for r in rows]
    if numeric is None:
        numeric = [bool(rows) and all(_looks_numeric(r[i]) for r in rows if r[i] not in ("", "NA"))
                   and any(r[i] not in ("", "NA") for r in rows) for i in range(len(header))]
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in header)
    body = []
    for r in rows:
        cells = "".join(f'<td class="num">{esc(c)}</td>' if numeric[i] else f"<td>{esc(c)}</td>"
                        for i, c in enumerate(r))
        body.append(f"<tr>{cells}</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    tid = f' id="{esc(table_id)}"' if table_id else ""
    return (f'<div class="wide"><table{tid}>{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _looks_numeric(text: str) -> bool:
    t = text.replace(",", "").replace(" ± ", "").replace("−", "-").replace("+", "").replace(".", "").replace("-", "")
    return t.isdigit()


def frame_table(frame: pd.DataFrame, caption: str | None = None, digits: int = 3, index: bool = True,
                table_id: str | None = None) -> str:
    """A pandas table as HTML (index columns first when ``index``)."""
    if index:
        frame = frame.reset_index()
    header = [str(c) for c in frame.columns]
    rows = [[fmt(v, digits) if not isinstance(v, str) else v for v in row]
            for row in frame.itertuples(index=False, name=None)]
    return table(header, rows, caption, table_id=table_id)


def key_values(pairs: Iterable[tuple[str, object]], caption: str | None = None) -> str:
    """A two-column table of settings."""
    return table(["setting", "value"], [[k, setting(v)] for k, v in pairs], caption,
                 numeric=[False, False])


def page(title: str, subtitle: str, nav: Sequence[tuple[str, str]], body: Sequence[str], footer: str) -> str:
    """The whole document: head with the inline style sheet, a table of contents, the sections
    and the footer."""
    toc = "".join(f'<li><a href="#{esc(i)}">{esc(t)}</a></li>' for i, t in nav)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head>"
        f"<body><header><h1>{esc(title)}</h1><p class=\"lead\">{esc(subtitle)}</p>"
        f'<nav aria-label="contents"><ul>{toc}</ul></nav></header>'
        f"<main>{''.join(body)}</main>{footer}</body></html>\n"
    )


__all__ = ["bullets", "details", "esc", "figure", "fmt", "frame_table", "heading", "key_values", "page", "para",
           "pm", "section", "setting", "table"]
