"""How the `timepart` command prints: JSON for machines, aligned tables and short lines for
people, and the sections of the summary view. Only printing: the data comes from the client.
Every line for people passes through safe() (echo), and JSON (json_text) is ASCII only, so
a name or message from the database cannot drive the terminal."""
import json
import re
import sys
from dataclasses import asdict, is_dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import click

SUMMARY_LOG_ROWS = 10  # the summary's recent log, newest first

# What a terminal acts on instead of showing: C0 controls (newline and tab too, so a value
# cannot begin a line of its own), DEL, C1 controls (CSI, OSC, ...), and the bidirectional
# marks, embeddings, overrides and isolates that reorder what follows (U+061C, U+200E/F,
# U+202A-E, U+2066-9), and the line and paragraph separators U+2028/9. Each is shown as a
# Python-style escape (\x1b, \u202e); backslashes themselves are left as they are.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text) -> str:
    """Text fit for a terminal: every character of _UNSAFE as a visible escape. Idempotent."""
    return _UNSAFE.sub(_escape, str(text))


def echo(text: str = "", **kwargs) -> None:
    """One line for people (click.echo adds the newline); the one way the CLI prints them."""
    click.echo(safe(text), **kwargs)


def plain(value):
    """JSON for what psycopg returns and the client's dataclasses."""
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if is_dataclass(value):
        return asdict(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    raise TypeError(f"cannot turn {type(value).__name__} into JSON")


def json_text(data, indent=None) -> str:
    """JSON for machines, left as json.dumps writes it: ASCII only (ensure_ascii), so every
    character outside printable ASCII (controls, DEL, C1, bidi) is a \\u escape already."""
    return json.dumps(data, default=plain, indent=indent)


def echo_json(data) -> None:
    click.echo(json_text(data, indent=2))


_ISO_MOMENT = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.\d+)?([+-]\d\d):?(\d\d)$")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S%z")
    if isinstance(value, (dict, list)):
        return json_text(value)
    # A moment read from JSON (the summary): printed as a datetime is, to the second.
    moment = _ISO_MOMENT.match(value) if isinstance(value, str) else None
    if moment:
        day, time, hours, minutes = moment.groups()
        return f"{day} {time}{hours}{minutes}"
    return safe(value)


def echo_table(rows, columns) -> None:
    """Rows (dicts or dataclasses) as an aligned text table."""
    rows = [asdict(r) if is_dataclass(r) else r for r in rows]
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(columns)]
    for line in [list(columns), ["-" * w for w in widths]] + cells:
        echo("  ".join(text.ljust(w) for text, w in zip(line, widths)).rstrip())
    if not rows:
        echo("(none)")


def echo_operation(result, verb: str) -> None:
    echo(f"{verb}: {'ok' if result.success else 'FAILED'} in {result.execution_time_ms} ms")
    for name in result.created_partitions:
        echo(f"  created {name}")
    for name, count in result.dropped_partitions:
        echo(f"  {'would drop' if result.dry_run else 'dropped'} {name} ({count} rows)")
    for error in result.errors:
        echo(f"  error: {error}")


def echo_from_env(setting, tables) -> None:
    """Says that a seed variable (seed_env.EnvMonths) chose a setting, and for which tables."""
    echo(f"from the environment: {setting.describe()} for {', '.join(tables)}")


def echo_progress(p) -> None:
    """One progress line a batch (rows, share, rate, ETA), redrawn in place on a terminal."""
    share = f"{100 * p.rows / p.total:.0f}%" if p.total else "?"
    eta = f"ETA {p.eta_seconds:.0f}s" if p.eta_seconds is not None else "ETA ?"
    line = f"copied {p.rows} of ~{p.total} rows ({share}), {p.rate} rows/s, {eta}"
    if sys.stdout.isatty():
        width = 30
        done = int(width * min(p.rows / p.total, 1)) if p.total else 0
        click.echo("\r" + safe(f"[{'#' * done}{'.' * (width - done)}] {line}"), nl=p.rows >= p.total)
    else:
        echo(line)


def echo_health(health) -> None:
    """The /health document in a few lines: status, partitions, issues, recommendations."""
    echo(f"status: {health.status}")
    echo(f"partitions: {health.partition_count}, {health.total_size_mb} MB, "
               f"oldest {health.oldest_partition}, newest {health.newest_partition}")
    for issue in health.issues:
        echo(f"  issue: {issue}")
    for rec in health.recommendations:
        echo(f"  recommendation: {rec}")


# ---- the summary view ---------------------------------------------------------------

def _section(title: str) -> None:
    echo()
    echo(f"== {title}")


def echo_summary(doc: dict, health) -> None:
    """timepart.summary() for people, in sections: health, tables, partitions, jobs, the
    newest log rows and the open alerts. `health` is doc["health"] as the client's Health."""
    echo(f"timepart summary, {_cell(doc.get('generated_at'))}")
    _section("health")
    echo_health(health)
    _section("tables")
    echo_table(doc.get("configuration", []), ["parent", "partition_interval", "premake", "retention", "time_zone",
                                              "default_partition"])
    _section("partitions")
    echo_table(doc.get("stats", []), ["parent_table", "partition_name", "period", "record_count", "size_mb",
                                      "oldest_record", "newest_record"])
    _section("jobs")
    _echo_jobs(doc.get("jobs", []))
    log = doc.get("recent_log", [])
    _section(f"recent log (newest {min(len(log), SUMMARY_LOG_ROWS)})")
    echo_table(log[:SUMMARY_LOG_ROWS], ["created_at", "operation_type", "parent_table", "partition_name", "success",
                                        "error"])
    _section("alerts")
    echo_table(doc.get("open_alerts", []), ["severity", "alert_type", "parent_table", "partition_name", "message"])


def _echo_jobs(jobs) -> None:
    # _jobs_summary reports an unreachable pg_cron as one {"error": ...} row.
    errors = [j["error"] for j in jobs if "error" in j]
    if errors:
        echo("; ".join(errors))
    elif not jobs:
        echo("none scheduled (timepart.schedule_jobs() or `timepart install --schedule` sets them up)")
    else:
        echo_table(jobs, ["jobname", "schedule", "active", "last_status", "last_success"])
