"""The reports' document model: sections of paragraphs, tables and images, rendered to
Markdown and to a self-contained HTML page (``make report`` for FC and for LSTM networks)."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np

from hw.arch.atomic import write_atomic


# ---- document model: sections rendered to Markdown and HTML --------------------------------

class Doc:
    """Sections of paragraphs, tables and images, rendered to Markdown and to HTML."""

    def __init__(self, title: str):
        self.title = title
        self.sections: list[tuple[str, list]] = []

    def section(self, title: str):
        self.sections.append((title, []))

    def p(self, text: str):
        self.sections[-1][1].append(("p", text))

    def table(self, header: list, rows: list):
        self.sections[-1][1].append(("table", header, rows))

    def img(self, name: str, png: bytes, alt: str):
        self.sections[-1][1].append(("img", name, png, alt))

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for title, blocks in self.sections:
            out += [f"## {title}", ""]
            for b in blocks:
                if b[0] == "p":
                    out += [b[1], ""]
                elif b[0] == "table":
                    out.append("| " + " | ".join(b[1]) + " |")
                    out.append("|" + "---|" * len(b[1]))
                    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in b[2]]
                    out.append("")
                else:
                    out += [f"![{b[3]}](plots/{b[1]})", ""]
        return "\n".join(out)

    def html(self) -> str:
        def inline(s):
            s = html.escape(str(s))
            # **bold** and `code` as in the Markdown
            parts = s.split("**")
            s = "".join(f"<b>{x}</b>" if i % 2 else x for i, x in enumerate(parts))
            parts = s.split("`")
            return "".join(f"<code>{x}</code>" if i % 2 else x for i, x in enumerate(parts))

        out = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
               f"<title>{html.escape(self.title)}</title><style>",
               "body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}",
               "table{border-collapse:collapse;margin:0.5em 0}",
               "td,th{border:1px solid #bbb;padding:2px 6px;text-align:right}",
               "td:first-child,th:first-child{text-align:left}img{max-width:100%}",
               "</style></head><body>", f"<h1>{html.escape(self.title)}</h1>"]
        for title, blocks in self.sections:
            out.append(f"<h2>{html.escape(title)}</h2>")
            for b in blocks:
                if b[0] == "p":
                    out.append(f"<p>{inline(b[1])}</p>")
                elif b[0] == "table":
                    out.append("<table><tr>" + "".join(f"<th>{inline(h)}</th>" for h in b[1])
                               + "</tr>")
                    out += ["<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>"
                            for r in b[2]]
                    out.append("</table>")
                else:
                    data = base64.b64encode(b[2]).decode()
                    out.append(f"<img alt='{html.escape(b[3])}' "
                               f"src='data:image/png;base64,{data}'>")
        out.append("</body></html>")
        return "\n".join(out)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _ratio(x: float) -> str:
    return f"{x:,.0f}x" if x >= 10 else f"{x:.2f}x"


def _f(x, spec=",.1f", none="-"):
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return none
    return format(x, spec)


def _pyplot():
    """matplotlib's pyplot on the Agg backend (an optional heavy import, hence here)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_report(doc: Doc, data: dict, out: Path) -> list[Path]:
    """Write report.md, report.html, plots/*.png and report_energy.json (each atomically)."""
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    for _, blocks in doc.sections:
        for b in blocks:
            if b[0] == "img":
                write_atomic(plots / b[1], b[2])
    paths = [out / "report.md", out / "report.html", out / "report_energy.json"]
    write_atomic(paths[0], doc.markdown())
    write_atomic(paths[1], doc.html())
    write_atomic(paths[2], json.dumps(data, indent=1, default=float))
    return paths
