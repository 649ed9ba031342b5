"""`verify` and `verify --history` rendered: tables, CSV, Markdown, a terminal chart (plotext) and a PNG
(matplotlib, the optional `charts` extra). Both chart libraries are imported only when a chart is drawn, so
`--help` and every other command never load them."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from m365archive.app.snapshots import Point
    from m365archive.app.verify import VerifyResult

CSV_FIELDS = ("taken_at", "source", "items", "receiving", "mailboxes", "new_items")
PNG_SIZE = (1000, 500)  # pixels: width, height
SOURCE_HEADERS = ["Source", "Folder", "Mailboxes", "Receiving", "Items", "Newest item", "State"]


class ChartsMissing(Exception):
    """matplotlib is not installed: the PNG needs the `charts` extra."""


def source_rows(result: VerifyResult) -> list[list[str]]:
    rows = []
    for s in result.sources:
        if not s.checkable:
            rows.append([s.source, s.folder or "-", "-", "-", "-", "-", "can't check"])
            continue
        state = "silent" if s.silent else ("some silent" if s.stale or s.never else "arriving")
        newest = s.to_dict()["newest"] or "never"
        rows.append([s.source, s.folder, f"{s.mailboxes:,}", f"{s.receiving:,}", f"{s.items:,}", newest, state])
    for c in result.catchall:
        newest = c.to_dict()["newest"] or "-"
        state = "unreadable" if not c.readable else ("unmapped items" if c.items else "empty")
        rows.append([f"catch-all {c.upn}", "/Inbox", "1", "1" if c.items else "0", f"{c.items:,}", newest, state])
    return rows


def markdown(result: VerifyResult) -> str:
    from m365archive.report.markdown import cell, table

    taken = result.to_dict()["taken_at"]
    lines = [
        "# m365archive verify",
        "",
        f"- **Tenant:** {cell(result.tenant.get('domain') or result.tenant.get('id', ''))}",
        f"- **Procedure:** {result.procedure}",
        f"- **Taken at (service time):** {taken}",
        f"- **Silent after:** {result.silent_after_days:g} day(s)",
        f"- **Mailboxes read:** {result.mailboxes_read:,}",
        "",
    ]
    lines += [f"> {cell(note)}" for note in result.notes]
    if result.notes:
        lines.append("")
    lines += ["## Arrivals per source", ""]
    rows = source_rows(result)
    lines += table(SOURCE_HEADERS, rows) if rows else ["No source to check."]
    lines += ["", "## Findings", ""]
    if result.findings:
        lines += table(
            ["Severity", "Finding", "Remedy", "Id"],
            [
                [f.severity.value + (" (accepted)" if f.accepted else ""), f.message, f.remedy, f.id]
                for f in result.findings
            ],
        )
    else:
        lines.append("None: every source is arriving in every mailbox in scope.")
    return "\n".join(lines)


def history_csv(points: Sequence[Point]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for p in points:
        writer.writerow(p.to_dict())
    return out.getvalue()


def _by_source(points: Sequence[Point]) -> tuple[list[str], dict[str, list[tuple[int, int]]]]:
    """The runs' times (x positions) and, per source, (run index, items)."""
    times = sorted({p.taken_at for p in points})
    index = {t: i for i, t in enumerate(times)}
    lines: dict[str, list[tuple[int, int]]] = {}
    for p in points:
        lines.setdefault(p.source, []).append((index[p.taken_at], p.items))
    return times, lines


def _label(taken_at: str) -> str:
    return taken_at[:10] if len(taken_at) >= 10 else taken_at


def terminal_chart(points: Sequence[Point], *, width: int = 100, height: int = 20, color: bool = True) -> str:
    """Items per source over the runs, drawn with plotext (as text, ANSI colours unless `color` is off)."""
    import plotext as plt

    times, lines = _by_source(points)
    plt.clear_figure()
    plt.plotsize(width, height)
    if not color:
        plt.theme("clear")
    for source, xy in lines.items():
        plt.plot([x for x, _ in xy], [y for _, y in xy], label=source, marker="braille")
    step = max(1, len(times) // 8)
    ticks = list(range(0, len(times), step))
    plt.xticks(ticks, [_label(times[i]) for i in ticks])
    plt.title("Items per source (verify runs)")
    text: str = plt.build()
    plt.clear_figure()
    return text


def png_chart(points: Sequence[Point], *, size: tuple[int, int] = PNG_SIZE) -> bytes:
    """Items per source over the runs as a PNG of `size` pixels (matplotlib's Agg backend, no display)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError:
        raise ChartsMissing(
            "the PNG chart needs matplotlib: pip install 'm365archive[charts]' (or pipx inject m365archive matplotlib)"
        ) from None
    times, lines = _by_source(points)
    dpi = 100
    fig = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    ax: Any = fig.add_subplot()
    for source, xy in lines.items():
        ax.plot([x for x, _ in xy], [y for _, y in xy], marker="o", label=source)
    step = max(1, len(times) // 8)
    ticks = list(range(0, len(times), step))
    ax.set_xticks(ticks, [_label(times[i]) for i in ticks])
    ax.set_ylabel("items")
    ax.set_title("Items per source (verify runs)")
    ax.grid(True, alpha=0.3)
    if lines:
        ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=dpi)
    return out.getvalue()


def history_markdown(points: Sequence[Point], png: str | None) -> str:
    from m365archive.report.markdown import cell, table

    lines = ["# m365archive verify --history", ""]
    if png:
        lines += [f"![Items per source]({png})", ""]
    lines += table(
        ["Taken at", "Source", "Items", "New since previous run", "Receiving", "Mailboxes"],
        [[p.taken_at, cell(p.source), f"{p.items:,}", f"{p.new_items:,}", f"{p.receiving:,}", f"{p.mailboxes:,}"]
         for p in points],
    )  # fmt: skip
    return "\n".join(lines)
