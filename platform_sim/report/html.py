"""The HTML page of a report: one self-contained file (inline CSS, figures as base64 PNG, no
scripts, fonts or links to fetch), valid HTML5, every text escaped with :func:`html.escape`.

The helpers here know nothing about trials: they turn text, tables and figures into page
fragments (strings of HTML). :mod:`platform_sim.report.build` decides what goes on the page, and
the layout around it (head, style sheet, header, contents, footer) is the jinja2 template
``templates/report.html.j2``, which a sponsor's template can extend block by block or replace
(:func:`page`; ``platform-sim report DIR --template FILE``).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd


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


def _png_width(png_base64: str) -> int | None:
    """The pixel width of a base64-encoded PNG (its IHDR chunk), or None when it is not one."""
    import base64
    import struct

    head = base64.b64decode(png_base64[:32])
    if head[:8] != b"\x89PNG\r\n\x1a\n" or len(head) < 20:
        return None
    return int(struct.unpack(">I", head[16:20])[0])


def figure(figure_id: str, png_base64: str, alt: str, caption: str) -> str:
    """A figure with its image embedded as a data URI and a caption. Figures are drawn at twice
    their display resolution, so the image is shown at half its pixel width (sharp on high-density
    screens, and never wider than the page)."""
    width = _png_width(png_base64)
    size = f' width="{width // 2}"' if width else ""
    return (
        f'<figure id="{esc(figure_id)}"><img src="data:image/png;base64,{png_base64}"{size} alt="{esc(alt)}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


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


def table(
    header: Sequence[str],
    rows: Iterable[Sequence],
    caption: str | None = None,
    numeric: Sequence[bool] | None = None,
    table_id: str | None = None,
) -> str:
    """A table from a header and rows of cells (already formatted strings, or values shown with
    :func:`fmt`). ``numeric[i]`` right-aligns column i (default: guessed from the cells)."""
    rows = [[c if isinstance(c, str) else fmt(c) for c in r] for r in rows]
    if numeric is None:
        numeric = [
            bool(rows)
            and all(_looks_numeric(r[i]) for r in rows if r[i] not in ("", "NA"))
            and any(r[i] not in ("", "NA") for r in rows)
            for i in range(len(header))
        ]
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in header)
    body = []
    for r in rows:
        cells = "".join(
            f'<td class="num">{esc(c)}</td>' if numeric[i] else f"<td>{esc(c)}</td>" for i, c in enumerate(r)
        )
        body.append(f"<tr>{cells}</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    tid = f' id="{esc(table_id)}"' if table_id else ""
    return (
        f'<div class="wide"><table{tid}>{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    )


def _looks_numeric(text: str) -> bool:
    t = text.replace(",", "").replace(" ± ", "").replace("−", "-").replace("+", "").replace(".", "").replace("-", "")
    return t.isdigit()


def frame_table(
    frame: pd.DataFrame, caption: str | None = None, digits: int = 3, index: bool = True, table_id: str | None = None
) -> str:
    """A pandas table as HTML (index columns first when ``index``)."""
    if index:
        frame = frame.reset_index()
    header = [str(c) for c in frame.columns]
    rows = [
        [fmt(v, digits) if not isinstance(v, str) else v for v in row]
        for row in frame.itertuples(index=False, name=None)
    ]
    return table(header, rows, caption, table_id=table_id)


def key_values(pairs: Iterable[tuple[str, object]], caption: str | None = None) -> str:
    """A two-column table of settings."""
    return table(["setting", "value"], [[k, setting(v)] for k, v in pairs], caption, numeric=[False, False])


#: The folder of the shipped page template (``report.html.j2``) and style sheet (``report.css``).
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
#: The shipped page template, which a sponsor's template extends or replaces.
TEMPLATE = "report.html.j2"


def _template(template: str | Path | None):
    """The jinja2 template of the page: the shipped one, or the file ``template``, which may extend the
    shipped one by name (``{% extends "report.html.j2" %}``) and include ``report.css``."""
    import jinja2

    from ..config import ConfigError, Problem

    folders = [str(TEMPLATE_DIR)]
    name = TEMPLATE
    if template is not None:
        path = Path(template)
        if not path.is_file():
            raise ConfigError([Problem("template", "no such file", str(template))])
        folders.insert(0, str(path.resolve().parent))
        name = path.name
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folders),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    try:
        return environment.get_template(name)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(
            [Problem("template", f"line {exc.lineno}: {exc.message}", file=exc.filename or str(template))]
        ) from None
    except jinja2.TemplateNotFound as exc:
        raise ConfigError(
            [
                Problem(
                    "template",
                    f"names a template that is neither beside it nor shipped: {exc.name}",
                    file=str(template),
                )
            ]
        ) from None


def page(
    title: str,
    subtitle: str,
    nav: Sequence[tuple[str, str]],
    body: Sequence[str],
    footer: str,
    template: str | Path | None = None,
) -> str:
    """The whole document, rendered from the jinja2 template (:data:`TEMPLATE`, or a sponsor's file
    ``template``): the head with the inline style sheet, a table of contents, the sections and the
    footer. The template receives ``title`` and ``subtitle`` (text), ``nav`` (pairs of section id and
    title), ``sections`` and ``footer`` (HTML fragments, already escaped) and ``css`` (the shipped
    style sheet)."""
    import jinja2

    from ..config import ConfigError, Problem

    try:
        return _template(template).render(
            title=title,
            subtitle=subtitle,
            nav=list(nav),
            sections=[_markup(b) for b in body],
            footer=_markup(footer),
            css=_markup((TEMPLATE_DIR / "report.css").read_text(encoding="utf-8")),
        )
    except jinja2.TemplateError as exc:  # an undefined name or a failing filter in a sponsor's template
        raise ConfigError([Problem("template", f"cannot be rendered: {exc}", file=str(template or TEMPLATE))]) from None


def _markup(text: str):
    """An HTML fragment jinja2 inserts as it is (it was escaped when it was built)."""
    import markupsafe

    return markupsafe.Markup(text)


__all__ = [
    "bullets",
    "details",
    "esc",
    "figure",
    "fmt",
    "frame_table",
    "heading",
    "key_values",
    "page",
    "para",
    "pm",
    "section",
    "setting",
    "table",
]
