"""The report's page: sections of text, tables, code and figures, rendered as one
self-contained HTML file (figures embedded as base64 PNGs) and as markdown (figures as files).
Tested in `tests/search/test_report.py`.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search import layout


@dataclass
class Section:
    title: str
    html: list[str] = field(default_factory=list)
    md: list[str] = field(default_factory=list)

    def text(self, body: str) -> None:
        self.html.append(f"<p>{html.escape(body)}</p>")
        self.md.append(body + "\n")

    def note(self, body: str) -> None:
        self.html.append(f'<p class="note">{html.escape(body)}</p>')
        self.md.append(f"> {body}\n")

    def table(self, headers: list[str], rows: list[list[Any]]) -> None:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(cell(c))}</td>" for c in row) + "</tr>"
            for row in rows
        )
        self.html.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        md = ["| " + " | ".join(map(str, headers)) + " |", "|" + "---|" * len(headers)]
        md += ["| " + " | ".join(cell(c).replace("|", "\\|") for c in row) + " |" for row in rows]
        self.md.append("\n".join(md) + "\n")

    def code(self, body: str, summary: str | None = None) -> None:
        block = f"<pre>{html.escape(body)}</pre>"
        if summary:
            block = f"<details><summary>{html.escape(summary)}</summary>{block}</details>"
        self.html.append(block)
        self.md.append(f"```\n{body.rstrip()}\n```\n")


def cell(value: Any) -> str:
    if isinstance(value, float):
        return "–" if not math.isfinite(value) else f"{value:.4g}"
    return "–" if value is None or value == "" else str(value)


def pm(stats: dict[str, Any] | None) -> str:
    if not stats or stats.get("mean") is None:
        return "–"
    return f"{stats['mean']:.4f} ± {stats.get('std', 0.0):.4f}"


class Figures:
    """Saves each figure as a PNG for the markdown and embeds the same bytes in the HTML."""

    def __init__(self, out: Path):
        self.folder = out / layout.FIGURES_DIR
        self.folder.mkdir(parents=True, exist_ok=True)

    def add(self, section: Section, fig: Any, name: str, caption: str) -> None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
        data = buf.getvalue()
        (self.folder / f"{name}.png").write_bytes(data)
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        alt = html.escape(caption)
        section.html.append(
            f'<figure><img src="{uri}" alt="{alt}"><figcaption>{alt}</figcaption></figure>'
        )
        section.md.append(f"![{caption}]({layout.FIGURES_DIR}/{name}.png)\n")


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# sections


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;background:#fff}
h1{border-bottom:3px solid #1f77b4;padding-bottom:.3em}
h2{margin-top:2em;border-bottom:1px solid #ccc;color:#1f4e79}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}
th{background:#eef3f8}
tr:nth-child(even) td{background:#fafafa}
.note{background:#fff8e1;border-left:4px solid #f0ad4e;padding:.5em .8em}
figure{margin:1em 0}
img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.85em;color:#555}
pre{background:#f5f5f5;padding:.8em;overflow:auto;font-size:.85em}
nav a{margin-right:1em}
"""
SCRIPT = """
function atsukoMarkImages() {
  var imgs = document.images, ok = true;
  for (var i = 0; i < imgs.length; i++) {
    if (!(imgs[i].complete && imgs[i].naturalWidth > 0)) { ok = false; }
  }
  document.body.setAttribute('data-images-loaded', ok ? 'true' : 'false');
  document.body.setAttribute('data-image-count', String(imgs.length));
}
window.addEventListener('load', atsukoMarkImages);
"""


def _anchor(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower())


def render_html(title: str, intro: list[str], sections: list[Section]) -> str:
    nav = " ".join(f'<a href="#{_anchor(s.title)}">{html.escape(s.title)}</a>' for s in sections)
    body = "".join(
        f'<section id="{_anchor(s.title)}"><h2>{html.escape(s.title)}</h2>'
        + "".join(s.html)
        + "</section>"
        for s in sections
    )
    lead = "".join(f"<p>{html.escape(p)}</p>" for p in intro)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style><script>{SCRIPT}</script></head>"
        f'<body data-images-loaded="pending"><h1>{html.escape(title)}</h1>{lead}'
        f"<nav>{nav}</nav>{body}</body></html>\n"
    )


def render_md(title: str, intro: list[str], sections: list[Section]) -> str:
    parts = [f"# {title}\n", *[p + "\n" for p in intro]]
    for s in sections:
        parts.append(f"## {s.title}\n")
        parts += s.md
    return "\n".join(parts)
