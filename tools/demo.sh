#!/usr/bin/env bash
# make demo: timepart on a throwaway cluster of its own (not the tests'): email_events,
# sample events across months, maintain, then the partitions, their indexes and the log.
# The cluster keeps running afterwards: make psql, make cli ARGS=..., make stop.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export TIMEPART_CLUSTER=demo
tools/cluster.sh start
eval "$(tools/cluster.sh env)"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $PGDATABASE WITH (FORCE)" -c "CREATE DATABASE $PGDATABASE"
# pg_cron's launcher lives in this database: a restart lets it find the new one.
tools/cluster.sh restart

run() { echo; echo "$PGDATABASE=# $1"; psql -X -v ON_ERROR_STOP=1 -c "$1"; }

run "CREATE EXTENSION timepart"
run "SELECT timepart.create_email_events_table()"
run "INSERT INTO email_events (workspace_id, campaign_id, lead_id, event_type, external_id, created_at)
     SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(),
            (ARRAY['sent','delivery','open','click','bounce']::email_event_type[])[1 + g % 5],
            CASE WHEN g % 3 = 0 THEN 'msg-' || g END,
            date_trunc('month', now()) - interval '3 months' + (g % 180) * interval '1 day' + g * interval '1 second'
     FROM generate_series(1, 20000) g"
run "SELECT count(*) AS rows_waiting_in_default FROM email_events_default"
run "SELECT maintain_email_events_partitions()"
run "SELECT count(*) AS rows_left_in_default FROM email_events_default"
run "SELECT c.relname AS partition, pg_get_expr(c.relpartbound, c.oid) AS bounds,
            (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid) AS indexes
     FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
     WHERE h.inhparent = 'email_events'::regclass ORDER BY c.relname"
month=$(psql -X -Atc "SELECT to_char(now(), 'YYYY_MM')")
run "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'email_events_$month' ORDER BY indexname"
run "SELECT operation_type, partition_name, success, details->>'reason' AS reason,
            details->>'moved_rows' AS moved_rows, round(extract(epoch FROM duration) * 1000, 1) AS ms
     FROM partition_maintenance_log ORDER BY id"
run "SELECT timepart.snapshot_stats()"
run "SELECT name, period, record_count, size_mb, oldest_record, newest_record, exact FROM get_email_events_partition_stats()"
run "SELECT jsonb_pretty(timepart.health() - 'alerts')"

# The venv's activate script connects the timepart command (and psql) to the demo.
activate="$ROOT/.venv/bin/activate"
if [ -f "$activate" ]; then
  sed -i '/# timepart demo >>>/,/# <<< timepart demo/d' "$activate"
  { echo "# timepart demo >>>"; tools/cluster.sh conn; echo "# <<< timepart demo"; } >> "$activate"
fi

cat <<TXT

The demo's PostgreSQL $(psql -X -Atc 'SHOW server_version') keeps running (port $PGPORT, database $PGDATABASE):
  make psql                                 psql on the demo database
  make psql ARGS="-c 'SELECT timepart.health()'"
  make cli ARGS="status"                    the timepart command, connected to it
  source .venv/bin/activate; timepart health    the same, in your shell
  make stop                                 stops it (make demo starts it afresh)
TXT
