"""The `timepart` command: one click group, one function a command. Commands print
(through output.py); the library (install.py, client.py, seed_env.py) does the work and
returns data.
Exit codes: 0 success, 1 operational failure, 2 usage; `health`: 0/1/2/3."""
import asyncio
import functools
import signal
from dataclasses import asdict

import click
import psycopg

from . import db, install as lib, migrate as migration, seed_env
from .client import Health, PartitionManager, listen_alerts
from .output import (echo, echo_from_env, echo_health, echo_json, echo_operation, echo_progress, echo_summary,
                     echo_table, json_text, safe)

HEALTH_CODES = {"healthy": 0, "warning": 1, "critical": 2, "error": 3}


# ---- errors and connections -------------------------------------------------------

def _fail(message: str, code: int = 1):
    exc = click.ClickException(safe(message))  # names and messages from the database, escaped
    exc.exit_code = code
    raise exc


def _command(func=None, *, error_code: int = 1):
    """Turns library and database errors into one `Error:` line and an exit code."""
    if func is None:
        return functools.partial(_command, error_code=error_code)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except db.TimepartError as exc:
            _fail(str(exc), error_code)
        except psycopg.Error as exc:  # one line, without the connection's passwords
            ctx = click.get_current_context(silent=True)
            _fail(db.one_line(exc, (ctx.obj or {}).get("dsn") if ctx else None), error_code)
    return wrapper


class MonitoringCommand(click.Command):
    """A command whose bad arguments exit 3 (UNKNOWN), as monitoring plugins do."""

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            exc.exit_code = 3
            raise


def _connect(ctx, needs_timepart: bool = False):
    """A connection; for a command that needs timepart, refused (one line) when it is not
    in the database (NotInstalledError) or not trusted (UntrustedError). The installer
    commands check that themselves (install.installed)."""
    conn = db.connect(ctx.obj["dsn"])
    if needs_timepart:
        try:
            db.require_installed(conn)
        except db.TimepartError:
            conn.close()
            raise
    return conn


def _run(ctx, operation, table=None):
    """Runs `operation(manager)` for one table (or all) on an async connection, once the
    install is found and trusted (UntrustedError, NotInstalledError otherwise); the
    client does the SQL."""
    async def go():
        conn = await db.connect_async(ctx.obj["dsn"])
        try:
            manager = PartitionManager(conn, table)
            await manager.require_installed()
            return await operation(manager)
        finally:
            await conn.close()
    return asyncio.run(go())


# ---- the group --------------------------------------------------------------------

_DSN_HELP = "Connection string; default DATABASE_URL, then the PG* variables."
_JSON_HELP = "Machine-readable JSON output."


def _into_obj(key):
    """A command's own --dsn or --json: the same setting as the group's, given after the
    command name (timepart maintain --json)."""
    def callback(ctx, param, value):
        if value:
            ctx.ensure_object(dict)[key] = value
    return callback


class _Group(click.Group):
    """Every command also takes --dsn and --json after its name."""

    def add_command(self, cmd, name=None):
        cmd.params += [click.Option(["--dsn"], help=_DSN_HELP, expose_value=False, callback=_into_obj("dsn")),
                       click.Option(["--json"], is_flag=True, help=_JSON_HELP, expose_value=False,
                                    callback=_into_obj("json"))]
        super().add_command(cmd, name)


@click.group(cls=_Group)
@click.option("--dsn", help=_DSN_HELP)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@click.version_option(package_name="timepart")
@click.pass_context
def cli(ctx, dsn, as_json):
    """Manage time-partitioned PostgreSQL tables with the timepart extension."""
    ctx.obj = {"dsn": dsn, "json": as_json}


def main():
    cli()


# ---- install, upgrade, status, uninstall ------------------------------------------

@cli.command("install")
@click.option("--mode", type=click.Choice(lib.MODES), default="auto", show_default=True,
              help="extension: CREATE EXTENSION (files on the server); script: apply the SQL over the connection.")
@click.option("--with-email-events", is_flag=True, help="Also create the seed's email_events table (configured "
              "from PARTITION_MONTHS_AHEAD, PARTITION_RETENTION_MONTHS, PARTITION_MAX_SIZE_GB, PARTITION_MAX_RECORDS).")
@click.option("--schedule", is_flag=True, help="Also schedule the maintenance jobs with pg_cron.")
@click.pass_context
@_command
def install_cmd(ctx, mode, with_email_events, schedule):
    """Install timepart in the database (a no-op when it is there)."""
    with _connect(ctx) as conn:
        result = lib.install(conn, mode, with_email_events=with_email_events, schedule=schedule)
    if ctx.obj["json"]:
        return echo_json({**asdict(result), "message": result.message})
    echo(result.message)
    if result.email_events:
        echo(f"{'created' if result.email_events_created else 'already managed'}: {result.email_events}")
    if result.configuration:
        echo("configured from the environment: " + ", ".join(
            f"{k}={result.configuration[k]}" for k in lib.settings_from_env()))
    for job in result.jobs:
        echo(f"scheduled {job['jobname']} ({job['schedule']})")


@cli.command("upgrade")
@click.option("--to", "to", metavar="VERSION", help="Target version (default: the newest).")
@click.pass_context
@_command
def upgrade_cmd(ctx, to):
    """Upgrade timepart along the upgrade scripts, in one transaction."""
    with _connect(ctx) as conn:
        result = lib.upgrade(conn, to)
    if ctx.obj["json"]:
        return echo_json({**asdict(result), "message": result.message})
    echo(result.message)


@cli.command("status")
@click.pass_context
@_command
def status_cmd(ctx):
    """Installed version and mode, available versions, managed tables, scheduled jobs."""
    with _connect(ctx) as conn:
        st = lib.status(conn)
    if ctx.obj["json"]:
        return echo_json({**asdict(st), "installed": st.installed})
    if st.installed:
        echo(f"timepart {st.version} installed ({st.mode} mode)")
    else:
        echo("timepart is not installed in this database")
    echo(f"versions in the package: {', '.join(st.file_versions)}")
    echo(f"versions on the server:  {', '.join(st.server_versions) or 'none (script mode only)'}")
    if st.installed:
        echo()
        echo("managed tables:")
        echo_table(st.tables, ["parent", "partition_interval", "premake", "retention"])
    if not st.installed:
        return
    if st.jobs is None:
        echo()
        echo(f"scheduled jobs: {st.jobs_error}")
    elif not st.jobs:
        echo()
        echo("scheduled jobs: none (timepart.schedule_jobs() or `timepart install --schedule` sets them up)")
    else:
        echo()
        echo("scheduled jobs:")
        echo_table(st.jobs, ["jobname", "schedule", "active", "last_status", "last_success"])


@cli.command("uninstall")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
@_command
def uninstall_cmd(ctx, yes):
    """Remove timepart's own objects; managed tables and their rows stay."""
    if not yes:
        click.confirm("Remove timepart (its configuration and log) from this database? Tables and rows stay.",
                      abort=True)
    with _connect(ctx) as conn:
        result = lib.uninstall(conn)
    if ctx.obj["json"]:
        return echo_json({**asdict(result), "message": result.message})
    echo(result.message)


# ---- operations: each one SQL call through the client -----------------------------

_table_option = click.option("--table", "table", metavar="TABLE", help="One managed table (default: all).")


def _echo_run(ctx, result, verb: str, setting, seeded) -> None:
    """A maintain or cleanup result, and its exit code; says when a seed variable chose
    the setting (not in JSON, which stays the SQL function's document)."""
    if ctx.obj["json"]:
        echo_json(result.as_dict())
    else:
        if seeded:
            echo_from_env(setting, seeded)
        echo_operation(result, verb)
    ctx.exit(0 if result.success else 1)


@cli.command("maintain")
@_table_option
@click.option("--premake", type=click.IntRange(min=1),
              help="Future partitions to keep (default: PARTITION_MONTHS_AHEAD for email_events, else configured).")
@click.pass_context
@_command
def maintain_cmd(ctx, table, premake):
    """Create current and future partitions, fill gaps, empty the default partition."""
    setting = None if premake is not None else seed_env.months_from_env(seed_env.PREMAKE)
    result, seeded = _run(ctx, lambda m: seed_env.run(
        m, setting, lambda t, months: t.maintain(premake if months is None else months)), table)
    _echo_run(ctx, result, "maintain", setting, seeded)


@cli.command("cleanup")
@_table_option
@click.option("--retention", metavar="INTERVAL",
              help="e.g. '12 months' (default: PARTITION_RETENTION_MONTHS for email_events, else configured).")
@click.option("--dry-run", is_flag=True, help="Report what would be removed; change nothing.")
@click.pass_context
@_command
def cleanup_cmd(ctx, table, retention, dry_run):
    """Remove partitions wholly older than the retention."""
    setting = None if retention is not None else seed_env.months_from_env(seed_env.RETENTION)
    result, seeded = _run(ctx, lambda m: seed_env.run(
        m, setting, lambda t, months: t.cleanup(retention if months is None else f"{months} months", dry_run)), table)
    _echo_run(ctx, result, "cleanup (dry run)" if dry_run else "cleanup", setting, seeded)


@cli.command("migrate")
@click.argument("table")
@click.option("--key", required=True, metavar="COLUMN", help="The time column to partition by.")
@click.option("--interval", default="1 month", show_default=True, help="Width of one partition.")
@click.option("--batch-size", type=click.IntRange(min=1), default=50000, show_default=True,
              help="Rows copied per transaction.")
@click.option("--dry-run", is_flag=True, help="Print the plan (partitions, rows, time); change nothing.")
@click.pass_context
@_command
def migrate_cmd(ctx, table, key, interval, batch_size, dry_run):
    """Convert an unpartitioned TABLE into a partitioned one, online and resumable."""
    with _connect(ctx, needs_timepart=True) as conn:
        if dry_run:
            rows = migration.plan(conn, table, key, interval)
            carried = migration.carried(conn, table)
            if ctx.obj["json"]:
                return echo_json({"partitions": rows, "carried": carried})
            echo_table(rows, ["partition_name", "range_start", "range_end", "estimated_rows", "rows_from",
                               "estimated_seconds"])
            echo(f"{len(rows)} partitions, ~{sum(r.estimated_rows for r in rows)} rows, "
                 f"~{sum(r.estimated_seconds for r in rows):.0f} s")
            echo()
            echo_table(carried, ["item", "name", "carried", "how"])
            return
        carried = migration.carried(conn, table)
        result = migration.run(conn, table, key, interval, batch_size, echo_progress, echo)
    if ctx.obj["json"]:
        return echo_json({**result, "carried": carried})
    if result:
        echo(f"migrated {result['table']}: {result['target_rows']} rows, verified batch by batch; "
                   f"old table kept as {result['old_table']}")
        for c in carried:
            echo(f"  {'carried' if c.carried else 'NOT carried'}: {c.item}{' ' + c.name if c.name else ''} ({c.how})")


@cli.command("stats")
@_table_option
@click.pass_context
@_command
def stats_cmd(ctx, table):
    """One row a partition: period, bounds, rows, size."""
    rows = _run(ctx, lambda m: m.partition_stats(), table)
    if ctx.obj["json"]:
        return echo_json(rows)
    echo_table(rows, ["partition_name", "period", "record_count", "size_mb", "oldest_record", "newest_record"])


@cli.command("health", cls=MonitoringCommand)
@_table_option
@click.pass_context
@_command(error_code=3)
def health_cmd(ctx, table):
    """Health status; exits 0 healthy, 1 warning, 2 critical, 3 error."""
    result = _run(ctx, lambda m: m.health(), table)
    echo_json(result.as_dict()) if ctx.obj["json"] else echo_health(result)
    ctx.exit(HEALTH_CODES.get(result.status, 3))


@cli.command("summary")
@_table_option
@click.pass_context
@_command
def summary_cmd(ctx, table):
    """Health, tables, partitions, jobs, recent log and open alerts (--json: the whole document)."""
    doc = _run(ctx, lambda m: m.summary(), table)
    echo_json(doc) if ctx.obj["json"] else echo_summary(doc, Health.from_json(doc["health"]))


@cli.command("report")
@_table_option
@click.option("--output", "output", required=True, metavar="FILE.html", help="Where to write the page.")
@click.pass_context
@_command
def report_cmd(ctx, table, output):
    """One self-contained HTML page with SVG charts: sizes, rows, growth, runway, alerts, log."""
    from . import report
    with _connect(ctx, needs_timepart=True) as conn:
        echo(f"wrote {report.write(conn, output, table)}")


@cli.command("log")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.pass_context
@_command
def log_cmd(ctx, limit):
    """The newest maintenance log rows."""
    rows = _run(ctx, lambda m: m.maintenance_log(limit))
    if ctx.obj["json"]:
        return echo_json(rows)
    echo_table(rows, ["created_at", "operation_type", "parent_table", "partition_name", "success", "error"])


@cli.command("alerts")
@_table_option
@click.option("--follow", is_flag=True, help="Print each new alert as it is announced (Ctrl-C stops).")
@click.pass_context
@_command
def alerts_cmd(ctx, table, follow):
    """Evaluate the alert rules and list the open alerts, or follow new ones."""
    if follow:
        return _follow_alerts(ctx, table)
    rows = _run(ctx, lambda m: m.check_alerts(), table)
    if ctx.obj["json"]:
        return echo_json(rows)
    echo_table(rows, ["severity", "alert_type", "parent_table", "partition_name", "message"])


def _follow_alerts(ctx, table):
    async def follow():
        # Ctrl-C (or SIGTERM) cancels the task, so the wait for a notification ends cleanly
        # instead of a KeyboardInterrupt landing inside asyncio's callbacks.
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        conn = await db.connect_async(ctx.obj["dsn"])
        try:
            await PartitionManager(conn).require_installed()
            async for payload in listen_alerts(conn):
                if table and isinstance(payload, dict) and payload.get("parent_table") not in (None, table):
                    continue
                click.echo(json_text(payload) if not isinstance(payload, str) else safe(payload))
        except asyncio.CancelledError:
            pass
        finally:
            await conn.close()
    try:
        asyncio.run(follow())
    except KeyboardInterrupt:
        pass
