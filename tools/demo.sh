#!/usr/bin/env bash
# make demo: timepart on a throwaway cluster of its own (not the tests'): email_events,
# sample events across months, maintain, then the partitions, their indexes and the log.
# The cluster keeps running afterwards: make psql, make cli ARGS=..., make stop.
set -eEuo pipefail
trap 'echo "demo: failed at line $LINENO: $BASH_COMMAND (exit $?). The lines above say why; make demo starts again from the top." >&2' ERR
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export TIMEPART_CLUSTER=demo
# No pager: every table stays on the screen, 80 columns wide at most.
export PAGER=cat PSQL_PAGER=cat
tools/cluster.sh start
eval "$(tools/cluster.sh env)"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $PGDATABASE WITH (FORCE)" -c "CREATE DATABASE $PGDATABASE"
# pg_cron's launcher lives in this database: a restart lets it find the new one.
tools/cluster.sh restart

run() { echo; echo "=# $1"; psql -X -P pager=off -v ON_ERROR_STOP=1 -c "$1"; }

run "CREATE EXTENSION timepart"
run "SELECT timepart.create_email_events_table()"
run "INSERT INTO email_events (workspace_id, campaign_id, lead_id,
                          event_type, external_id, created_at)
   SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(),
          (enum_range(NULL::email_event_type))[1 + g % 5],
          CASE WHEN g % 3 = 0 THEN 'msg-' || g END,
          date_trunc('month', now()) - interval '3 months'
            + (g % 180) * interval '1 day' + g * interval '1 second'
   FROM generate_series(1, 20000) g"
run "SELECT count(*) AS rows_waiting FROM email_events_default"
run "SELECT jsonb_pretty(maintain_email_events_partitions() - 'tables')"
run "SELECT count(*) AS rows_left FROM email_events_default"
run "SELECT partition_name, range_start::date AS from_day,
          range_end::date AS to_day, index_count
   FROM timepart.partition_stats('email_events')
   ORDER BY range_start NULLS FIRST"
month=$(psql -X -Atc "SELECT to_char(now(), 'YYYY_MM')")
run "SELECT replace(indexname, tablename, '') AS index,
          regexp_replace(indexdef, '^.*USING \w+ \(([^)]*)\).*', '\1') AS cols,
          indexdef LIKE '% WHERE %' AS partial
   FROM pg_indexes WHERE tablename = 'email_events_$month' ORDER BY 1"
run "SELECT operation_type AS operation, partition_name, success AS ok,
          details->>'moved_rows' AS moved,
          round(extract(epoch FROM duration) * 1000, 1) AS ms
   FROM partition_maintenance_log ORDER BY id"
run "SELECT timepart.snapshot_stats()"
run "SELECT name, record_count AS rows, size_mb,
          to_char(oldest_record, 'MM-DD HH24:MI') AS oldest,
          to_char(newest_record, 'MM-DD HH24:MI') AS newest, exact
   FROM get_email_events_partition_stats()"
run "SELECT jsonb_pretty(timepart.health() - 'alerts')"

# The venv's activate script connects the timepart command (and psql) to the demo.
activate="$ROOT/.venv/bin/activate"
if [ -f "$activate" ]; then
  sed -i '/# timepart demo >>>/,/# <<< timepart demo/d' "$activate"
  { echo "# timepart demo >>>"; tools/cluster.sh conn; echo "# <<< timepart demo"; } >> "$activate"
fi

cat <<TXT

Done. The demo's PostgreSQL $(psql -X -Atc "SELECT split_part(current_setting('server_version'), ' ', 1)") keeps running. Try:
  make psql                  psql on database $PGDATABASE
  make cli ARGS="health"     the timepart command, connected to it
  source .venv/bin/activate  then: timepart summary, timepart stats --json
  eval "\$(make -s env)"      PG* variables for any client (socket folder
                             $PGHOST, port $PGPORT)
  make stop                  stops it; make demo starts it afresh
Next: README.md, "Managing your own table".
TXT
