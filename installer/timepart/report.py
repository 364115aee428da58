"""`timepart report --output FILE.html`: one self-contained page (no network, no script)
with inline SVG charts: partition sizes and rows per table (the default partition marked),
growth from the statistics history, the future-partition runway, open alerts and the
recent log. The figures come from SQL (partition_stats, growth, open_alerts, the log);
this file only draws them."""
import html
from datetime import datetime, timezone
from typing import Dict, List

from psycopg import Connection
from psycopg.rows import dict_row

WIDTH = 960
BAR = 16
COLORS = {"partition": "#4a7bd0", "default": "#d9822b", "future": "#8fb3e8", "line": "#2f6b3a", "grid": "#dddddd"}


def gather(conn: Connection, table: str = None) -> Dict[str, list]:
    """Everything the page shows, read through timepart's SQL functions."""
    with conn.cursor(row_factory=dict_row) as cur:
        args = (table,)
        stats = cur.execute("SELECT * FROM timepart.partition_stats(%s::pg_catalog.regclass)", args).fetchall()
        growth = cur.execute("SELECT * FROM timepart.growth(%s::pg_catalog.regclass)", args).fetchall()
        # parent_table is the name as timepart's pinned search_path prints it: qualified.
        alerts = cur.execute("SELECT * FROM timepart.open_alerts a WHERE %s::pg_catalog.regclass IS NULL"
                             " OR pg_catalog.to_regclass(a.parent_table) OPERATOR(pg_catalog.=) %s::pg_catalog.regclass",
                             (table, table)).fetchall()
        log = cur.execute("SELECT * FROM timepart.get_maintenance_log(20)").fetchall()
    return {"stats": stats, "growth": growth, "alerts": alerts, "log": log}


def render(data: Dict[str, list], now: datetime = None) -> str:
    now = now or datetime.now(timezone.utc)
    tables: Dict[str, List[dict]] = {}
    for row in data["stats"]:
        tables.setdefault(row["parent_table"], []).append(row)
    parts = [f"<h1>timepart report</h1><p class='when'>{_e(now.strftime('%Y-%m-%d %H:%M UTC'))}: "
             f"{len(tables)} table(s), {sum(len(v) for v in tables.values())} partition(s)</p>"]
    for name, rows in tables.items():
        parts.append(f"<section><h2>{_e(name)}</h2>")
        parts.append(_bars(f"Partition sizes of {name} (MB)", rows, "size_mb", now))
        parts.append(_bars(f"Partition rows of {name}", rows, "record_count", now))
        parts.append(_growth(f"Growth of {name} (rows, from the statistics history)",
                             [g for g in data["growth"] if g["parent_table"] == name]))
        parts.append(_runway(f"Future-partition runway of {name}", rows, now))
        parts.append("</section>")
    parts.append(_table("Open alerts", data["alerts"], ["severity", "alert_type", "parent_table", "partition_name", "message"]))
    parts.append(_table("Recent maintenance log", data["log"],
                        ["created_at", "operation_type", "parent_table", "partition_name", "success", "error"]))
    return PAGE.format(body="\n".join(parts))


def write(conn: Connection, path: str, table: str = None) -> str:
    page = render(gather(conn, table))
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return path


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _bars(title: str, rows: List[dict], field: str, now: datetime) -> str:
    """Horizontal bars, one a partition in range order; the default partition in its own colour."""
    top = max([float(r[field] or 0) for r in rows] + [1])
    label_w, height = 230, BAR * len(rows) + 30
    out = [f"<figure><figcaption>{_e(title)}</figcaption>",
           f"<svg role='img' aria-label='{_e(title)}' width='{WIDTH}' height='{height}' viewBox='0 0 {WIDTH} {height}'>"]
    for i, r in enumerate(rows):
        y = 10 + i * BAR
        value = float(r[field] or 0)
        w = max(1, (WIDTH - label_w - 120) * value / top)
        kind = "default" if r["is_default"] else ("future" if r["range_start"] and r["range_start"] > now else "partition")
        name = r["partition_name"] + (" (default)" if r["is_default"] else "")
        out.append(f"<text x='{label_w - 6}' y='{y + BAR - 4}' text-anchor='end' class='label'>{_e(name)}</text>"
                   f"<rect x='{label_w}' y='{y + 2}' width='{w:.1f}' height='{BAR - 4}' fill='{COLORS[kind]}'>"
                   f"<title>{_e(name)}: {_e(r[field])}</title></rect>"
                   f"<text x='{label_w + w + 6:.1f}' y='{y + BAR - 4}' class='value'>{_e(r[field])}</text>")
    out.append("</svg></figure>")
    return "".join(out)


def _growth(title: str, points: List[dict]) -> str:
    """Rows in all per snapshot day, as a line."""
    height, pad = 180, 40
    out = [f"<figure><figcaption>{_e(title)}</figcaption>",
           f"<svg role='img' aria-label='{_e(title)}' width='{WIDTH}' height='{height}' viewBox='0 0 {WIDTH} {height}'>",
           f"<line x1='{pad}' y1='{height - pad}' x2='{WIDTH - pad}' y2='{height - pad}' stroke='{COLORS['grid']}'/>"]
    if not points:
        out.append(f"<text x='{pad}' y='{height / 2}' class='label'>no snapshots yet: timepart.snapshot_stats() "
                   "(the daily stats job) records them</text>")
    else:
        top = max([p["record_count"] or 0 for p in points] + [1])
        step = (WIDTH - 2 * pad) / max(len(points) - 1, 1)
        xy = [(pad + i * step, height - pad - (height - 2 * pad) * (p["record_count"] or 0) / top) for i, p in enumerate(points)]
        out.append(f"<polyline fill='none' stroke='{COLORS['line']}' stroke-width='2' "
                   f"points='{' '.join(f'{x:.1f},{y:.1f}' for x, y in xy)}'/>")
        for (x, y), p in zip(xy, points):
            out.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3' fill='{COLORS['line']}'>"
                       f"<title>{_e(p['snapshot_date'])}: {_e(p['record_count'])} rows</title></circle>")
        out.append(f"<text x='{pad}' y='{height - 10}' class='label'>{_e(points[0]['snapshot_date'])}</text>"
                   f"<text x='{WIDTH - pad}' y='{height - 10}' text-anchor='end' class='label'>{_e(points[-1]['snapshot_date'])}</text>"
                   f"<text x='{pad}' y='20' class='value'>{_e(top)} rows</text>")
    out.append("</svg></figure>")
    return "".join(out)


def _runway(title: str, rows: List[dict], now: datetime) -> str:
    """How far ahead partitions exist: one block a future period, up to the last one."""
    future = [r for r in rows if not r["is_default"] and r["range_start"] and r["range_start"] > now]
    last = max((r["range_end"] for r in future), default=None)
    height, cell = 70, min(60, (WIDTH - 40) / max(len(future), 1))
    out = [f"<figure><figcaption>{_e(title)}: {len(future)} future partition(s)"
           f"{', ready until ' + _e(last.strftime('%Y-%m-%d')) if last else ''}</figcaption>",
           f"<svg role='img' aria-label='{_e(title)}' width='{WIDTH}' height='{height}' viewBox='0 0 {WIDTH} {height}'>"]
    for i, r in enumerate(future):
        out.append(f"<rect x='{20 + i * cell:.1f}' y='10' width='{cell - 4:.1f}' height='30' fill='{COLORS['future']}'>"
                   f"<title>{_e(r['partition_name'])}</title></rect>")
    if not future:
        out.append("<text x='20' y='30' class='label'>no future partition: run timepart.maintain()</text>")
    out.append("</svg></figure>")
    return "".join(out)


def _table(title: str, rows: List[dict], columns: List[str]) -> str:
    body = "".join("<tr>" + "".join(f"<td>{_e(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return (f"<section><h2>{_e(title)}</h2><table><tr>{''.join(f'<th>{_e(c)}</th>' for c in columns)}</tr>"
            f"{body or f'<tr><td colspan={len(columns)}>none</td></tr>'}</table></section>")


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>timepart report</title>
<style>
body {{ font-family: sans-serif; margin: 24px; color: #222; }}
h1 {{ margin-bottom: 0; }} .when {{ color: #666; }}
figure {{ margin: 12px 0 24px; }} figcaption {{ font-weight: bold; margin-bottom: 4px; }}
svg .label {{ font-size: 11px; fill: #333; }} svg .value {{ font-size: 11px; fill: #666; }}
table {{ border-collapse: collapse; font-size: 12px; }} td, th {{ border: 1px solid #ccc; padding: 3px 6px; text-align: left; }}
</style></head>
<body>
{body}
</body></html>
"""
