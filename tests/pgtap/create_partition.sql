-- create_partition(): one period with its templated indexes; every refusal.
\ir setup.psql
SELECT plan(17);
SELECT timepart.create_email_events_table('public', '2024-06-15 12:00+00');

SELECT is(create_email_events_partition('2024-03-01', '2024-04-01'), 'public.email_events_2024_03',
          'the seed call creates email_events_2024_03');
SELECT bag_eq($$SELECT indexname::text FROM pg_indexes WHERE tablename = 'email_events_2024_03'$$,
    ARRAY['email_events_2024_03_pkey', 'email_events_2024_03_workspace_created_idx', 'email_events_2024_03_campaign_event_idx',
          'email_events_2024_03_lead_event_idx', 'email_events_2024_03_event_type_idx', 'email_events_2024_03_external_id_idx'],
    'March 2024 carries exactly the five templated indexes and the primary key');
SELECT matches((SELECT indexdef FROM pg_indexes WHERE indexname = 'email_events_2024_03_event_type_idx'),
    'WHERE \(event_type = ANY', 'the event_type index is partial');
SELECT matches((SELECT indexdef FROM pg_indexes WHERE indexname = 'email_events_2024_03_external_id_idx'),
    'WHERE \(external_id IS NOT NULL\)', 'the external_id index is partial');
SELECT is((SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE c.relname LIKE 'email_events_2024_03_%_idx'
             AND i.inhparent IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'email_events'::regclass)), 5::bigint,
          'each partition index is attached to the parent''s index');
SELECT is((SELECT bool_and(indisvalid) FROM pg_index WHERE indrelid = 'email_events'::regclass), true,
          'every index on the parent is valid');

SELECT is(timepart.create_partition('email_events', '2024-03-01 00:00+00', '2024-04-01 00:00+00'), 'public.email_events_2024_03',
          'an existing identical partition returns its name');
SELECT throws_ok($$SELECT create_email_events_partition('2024-04-01', '2024-03-01')$$, '22023',
                 'partition range is reversed or empty', 'reversed bounds are refused');
SELECT throws_ok($$SELECT create_email_events_partition('2024-04-01', '2024-04-01')$$, '22023',
                 'partition range is reversed or empty', 'empty bounds are refused');
SELECT throws_ok($$SELECT create_email_events_partition('2024-04-05', '2024-05-01')$$, '22023',
                 'partition range is not aligned with the interval of public.email_events', 'a misaligned start is refused');
SELECT throws_ok($$SELECT create_email_events_partition('2024-04-01', '2024-06-01')$$, '22023',
                 'partition range is not aligned with the interval of public.email_events', 'a two-period range is refused');
SELECT throws_ok($$SELECT timepart.create_partition('email_events', '-infinity', '2024-01-01')$$, '22023',
                 'partition bounds must be finite moments', 'infinite bounds are refused');
SELECT throws_ok($$SELECT timepart.create_partition('email_events', NULL, '2024-01-01')$$, '22023',
                 'partition bounds must be finite moments', 'NULL bounds are refused');

-- A partition someone attached by hand over half of January and half of February.
CREATE TABLE manual_part (LIKE email_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE email_events ATTACH PARTITION manual_part FOR VALUES FROM ('2024-01-15 00:00+00') TO ('2024-02-15 00:00+00');
SELECT throws_ok($$SELECT create_email_events_partition('2024-02-01', '2024-03-01')$$, '22023',
                 'partition range overlaps existing partition manual_part', 'an overlap names the partition in the way');

CREATE TABLE email_events_2023_11 (x int);
SELECT throws_ok($$SELECT create_email_events_partition('2023-11-01', '2023-12-01')$$, '42P07',
                 'relation public.email_events_2023_11 already exists and is not the partition wanted',
                 'a table in the way of the name is refused');
SELECT is((SELECT count(*) FROM pg_inherits WHERE inhparent = 'email_events'::regclass), 10::bigint,
          'no refused call created a partition (default, 2024_03, 2024_06..2024_12, manual_part)');
SELECT is((SELECT count(*) FROM timepart.maintenance_log WHERE operation_type = 'create_partition'
           AND partition_name = 'email_events_2024_03' AND success), 1::bigint, 'the creation is logged once');

SELECT * FROM finish();
ROLLBACK;
