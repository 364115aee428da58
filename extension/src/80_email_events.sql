-- The flagship preset: the seed's email_events table, managed monthly with its
-- five indexes, 6 periods ahead and 12 months of retention.

CREATE OR REPLACE FUNCTION timepart.create_email_events_table(schema name DEFAULT 'public', as_of timestamptz DEFAULT now(),
                                                              settings jsonb DEFAULT NULL)
RETURNS regclass LANGUAGE plpgsql AS $$
/* Creates the seed's email_event_type enum and email_events table in a schema
   (the foreign key to campaign_leads only where that table exists), registers the
   seed's five index templates, applies `settings` (as timepart.configure takes them:
   the installer passes the seed's environment variables) and only then creates the
   partitions it needs now. Safe to repeat. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    tbl regclass;
    has_leads boolean;
BEGIN
    IF schema IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = schema) THEN
        RAISE EXCEPTION 'schema "%" does not exist', schema USING ERRCODE = '3F000',
            DETAIL = 'email_events is created in an existing schema.', HINT = 'Create the schema first, or use public.';
    END IF;
    tbl := pg_catalog.to_regclass(format('%I.email_events', schema));
    IF tbl IS NOT NULL THEN
        IF EXISTS (SELECT 1 FROM timepart.config c WHERE c.parent = tbl) THEN
            RAISE NOTICE 'table % already exists and is managed', tbl;
            RETURN tbl;
        END IF;
        RAISE EXCEPTION 'table % already exists', tbl USING ERRCODE = '42P07',
            DETAIL = 'It is not managed by timepart.',
            HINT = format('Manage it with SELECT timepart.manage(%L) if it is partitioned by month on created_at.', tbl::text);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
                   WHERE n.nspname = schema AND t.typname = 'email_event_type') THEN
        EXECUTE format($f$CREATE TYPE %I.email_event_type AS ENUM ('sent', 'delivery', 'open', 'click', 'reply',
                          'bounce', 'complaint', 'unsubscribe', 'webhook')$f$, schema);
    END IF;
    has_leads := EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                         WHERE a.attrelid = pg_catalog.to_regclass(format('%I.campaign_leads', schema))
                           AND a.attname = 'id' AND NOT a.attisdropped);
    EXECUTE format($f$
        CREATE TABLE %1$I.email_events (
            id uuid DEFAULT gen_random_uuid(),
            workspace_id uuid NOT NULL,
            campaign_id uuid NOT NULL,
            lead_id uuid NOT NULL,
            campaign_lead_id uuid %2$s,
            event_type %1$I.email_event_type NOT NULL,
            email_id text,
            external_id text,
            metadata jsonb DEFAULT '{}',
            created_at timestamptz DEFAULT now(),
            PRIMARY KEY (id, created_at)
        ) PARTITION BY RANGE (created_at)$f$, schema,
        CASE WHEN has_leads THEN format('REFERENCES %I.campaign_leads(id) ON DELETE CASCADE', schema) ELSE '' END);
    tbl := format('%I.email_events', schema)::regclass;
    PERFORM timepart._register(tbl, '1 month', 6, '12 months', true, '100 milliseconds', 'UTC');
    CALL timepart._log('manage', tbl, NULL, true, '{"preset": "email_events"}', NULL, started);
    PERFORM timepart.add_index_template(tbl, 'workspace_created_idx', 'workspace_id, created_at DESC');
    PERFORM timepart.add_index_template(tbl, 'campaign_event_idx', 'campaign_id, event_type, created_at DESC');
    PERFORM timepart.add_index_template(tbl, 'lead_event_idx', 'lead_id, event_type, created_at DESC');
    PERFORM timepart.add_index_template(tbl, 'event_type_idx', 'event_type, created_at DESC',
                                        $w$event_type IN ('open', 'click', 'delivery', 'bounce')$w$);
    PERFORM timepart.add_index_template(tbl, 'external_id_idx', 'external_id', 'external_id IS NOT NULL');
    IF settings IS NOT NULL AND settings <> '{}'::jsonb THEN
        PERFORM timepart.configure(tbl, settings);
    END IF;
    PERFORM timepart.maintain(tbl, NULL, as_of);
    RETURN tbl;
END $$;
COMMENT ON FUNCTION timepart.create_email_events_table(name, timestamptz, jsonb) IS
    'Creates the seed''s email_events table, managed monthly with its five indexes, 6 ahead, 12 months retention';

-- The email_events table the seed's functions act on. `on_path` is what the caller's
-- search_path finds (the seed's wrappers look it up before the pinned path applies):
-- that table when it is managed; else the only managed email_events, if there is one.
CREATE OR REPLACE FUNCTION timepart._email_events(on_path regclass) RETURNS regclass
LANGUAGE plpgsql STABLE AS $$
DECLARE
    tbl regclass := on_path;
    candidates text;
BEGIN
    IF tbl IS NOT NULL AND EXISTS (SELECT 1 FROM timepart.config c WHERE c.parent = tbl) THEN
        RETURN tbl;
    END IF;
    SELECT string_agg(c.parent::text, ', ' ORDER BY c.parent::text), min(c.parent::oid)::regclass INTO candidates, tbl
    FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent WHERE r.relname = 'email_events';
    IF candidates LIKE '%,%' THEN
        RAISE EXCEPTION 'more than one managed email_events table, and none on the search_path' USING ERRCODE = '42P09',
            DETAIL = format('Managed: %s. The caller''s search_path finds %s.', candidates,
                            coalesce(on_path::text || ', which is not managed', 'no email_events')),
            HINT = 'Put the schema first on the search_path (SET search_path = tenant_a, public), '
                   'or name the table: SELECT timepart.maintain(''tenant_a.email_events'').';
    END IF;
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'no managed email_events table' USING ERRCODE = '42P01',
            DETAIL = 'The seed''s functions act on the table email_events managed by timepart.',
            HINT = 'Create it with SELECT timepart.create_email_events_table();';
    END IF;
    RETURN tbl;
END $$;
