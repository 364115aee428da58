-- Index templates: every partition gets every template as <partition>_<suffix>,
-- attached to the template's partitioned index on the parent (<parent>_<suffix>).

CREATE OR REPLACE FUNCTION timepart._template_sql(t timepart.index_templates, index_name name,
                                                  schema_name name, table_name name, only_parent boolean)
RETURNS text LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT format('CREATE INDEX %I ON %s%I.%I USING %I (%s)%s',
                  index_name, CASE WHEN only_parent THEN 'ONLY ' ELSE '' END,
                  schema_name, table_name, t.method, t.columns,
                  CASE WHEN t.where_clause IS NULL THEN '' ELSE ' WHERE (' || t.where_clause || ')' END);
END;

-- Creates the templated indexes a partition lacks and attaches each to the parent's
-- index. Returns the names created. Runs inside the caller's sub-transaction.
CREATE OR REPLACE FUNCTION timepart._index_partition(tbl regclass, part oid) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    t record;
    created text[] := '{}'::text[];
    statements text[] := '{}'::text[];
BEGIN
    -- A foreign-table partition holds no index: skipped, said once.
    IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = part) = 'f' THEN
        RAISE NOTICE 'timepart: % is a foreign table; index templates skip it', part::regclass;
        RETURN created;
    END IF;
    -- One query says, for every template, the index's name, whether it exists and
    -- whether it still needs attaching to the parent's index.
    FOR t IN
        WITH p AS (
            SELECT c.relname, c.relnamespace, n.nspname, c.relispartition
            FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = part
        ), want AS (
            SELECT it AS tmpl, timepart._fit_name(p.relname, it.suffix) AS idx, p.*,
                   timepart._template_parent_index(tbl, it.suffix) AS parent_idx
            FROM timepart.index_templates it, p WHERE it.parent = tbl
        )
        SELECT w.*, x.oid AS idx_oid,
               EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = x.oid) AS attached
        FROM want w
        LEFT JOIN pg_catalog.pg_class x ON x.relname = w.idx AND x.relnamespace = w.relnamespace
        ORDER BY (w.tmpl).suffix
    LOOP
        IF t.idx_oid IS NULL THEN
            statements := statements || timepart._template_sql(t.tmpl, t.idx, t.nspname, t.relname, false);
            created := created || t.idx::text;
        END IF;
        -- An attached partition's index is attached here; a new table's at its ATTACH.
        IF t.parent_idx IS NOT NULL AND t.relispartition AND NOT t.attached THEN
            statements := statements || format('ALTER INDEX %s ATTACH PARTITION %I.%I', t.parent_idx, t.nspname, t.idx);
        END IF;
    END LOOP;
    -- All of a partition's index statements in one call of the owner's executor.
    IF cardinality(statements) > 0 THEN
        PERFORM timepart._as_owner(tbl, array_to_string(statements, '; '));
    END IF;
    RETURN created;
END $$;

-- The partitioned index on the parent that a template's partition indexes attach to.
CREATE OR REPLACE FUNCTION timepart._template_parent_index(tbl regclass, suffix text) RETURNS regclass
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT c.oid::regclass FROM pg_catalog.pg_class c, pg_catalog.pg_class p
    WHERE p.oid = tbl AND c.relnamespace = p.relnamespace
      AND c.relname = timepart._fit_name(p.relname, suffix) AND c.relkind = 'I';
END;

-- A template's row, written as timepart's owner for the table's owner (see _config_put).
CREATE OR REPLACE FUNCTION timepart._template_put(t timepart.index_templates) RETURNS timepart.index_templates
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM timepart._check_may_act(timepart._caller(), t.parent, 'change its index templates');
    INSERT INTO timepart.index_templates AS it SELECT t.* RETURNING * INTO t;
    RETURN t;
END $$;

CREATE OR REPLACE FUNCTION timepart._template_drop(tbl regclass, template_suffix text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM timepart._check_may_act(timepart._caller(), tbl, 'change its index templates');
    DELETE FROM timepart.index_templates it WHERE it.parent = tbl AND it.suffix = template_suffix;
    RETURN FOUND;
END $$;

CREATE OR REPLACE FUNCTION timepart.add_index_template(parent regclass, suffix text, columns text,
                                                       where_clause text DEFAULT NULL, method text DEFAULT 'btree')
RETURNS integer LANGUAGE plpgsql AS $$
/* Registers an index every partition gets, creates it on the parent (ON ONLY, so
   no lock on the partitions) and back-fills every existing partition. Returns how
   many partition indexes were created. Safe to repeat. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    t timepart.index_templates;
    p record;
    pname name;
    pschema name;
    made integer := 0;
    existing timepart.index_templates;
    err text;
    state text;
BEGIN
    PERFORM timepart._config(parent);
    PERFORM timepart._check_owner_can_create(parent, 'index its partitions');
    PERFORM timepart._check_template(ROW(parent, suffix, columns, coalesce(method, 'btree'), where_clause, now())::timepart.index_templates);
    SELECT * INTO existing FROM timepart.index_templates it WHERE it.parent = add_index_template.parent AND it.suffix = add_index_template.suffix;
    IF FOUND THEN
        IF existing.columns IS DISTINCT FROM add_index_template.columns
           OR existing.method IS DISTINCT FROM add_index_template.method
           OR existing.where_clause IS DISTINCT FROM add_index_template.where_clause THEN
            RAISE EXCEPTION 'index template "%" already exists on % with another definition', suffix, parent
                USING ERRCODE = '42710',
                DETAIL = format('Existing: USING %s (%s)%s', existing.method, existing.columns,
                                coalesce(' WHERE ' || existing.where_clause, '')),
                HINT = 'Remove it with timepart.drop_index_template() first, or choose another suffix.';
        END IF;
        t := existing;
    ELSE
        t := timepart._template_put(ROW(parent, suffix, columns, coalesce(method, 'btree'), where_clause, now())::timepart.index_templates);
    END IF;

    SELECT c.relname, n.nspname INTO pname, pschema
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = parent;
    IF timepart._template_parent_index(parent, suffix) IS NULL THEN
        -- An invalid definition fails here, before any partition is touched.
        BEGIN
            PERFORM timepart._as_owner(parent, timepart._template_sql(t, timepart._fit_name(pname, suffix), pschema, pname, true));
        EXCEPTION WHEN undefined_column OR undefined_function OR undefined_object OR syntax_error OR datatype_mismatch
                       OR wrong_object_type OR invalid_object_definition THEN
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
            RAISE EXCEPTION 'index template "%" does not fit %: %', suffix, parent, err USING ERRCODE = state,
                DETAIL = format('Template: USING %s (%s)%s.', t.method, t.columns, coalesce(' WHERE ' || t.where_clause, '')),
                HINT = format('Use columns and expressions of %s (\d %s lists them); nothing was changed.', parent, parent);
        END;
    END IF;
    FOR p IN SELECT * FROM timepart._partitions(parent) LOOP
        made := made + coalesce(array_length(timepart._index_partition(parent, p.partition_oid), 1), 0);
    END LOOP;
    CALL timepart._log('add_index_template', parent, NULL, true,
        jsonb_build_object('suffix', suffix, 'columns', columns, 'method', t.method,
                           'where', where_clause, 'indexes_created', made), NULL, started);
    RETURN made;
END $$;
COMMENT ON FUNCTION timepart.add_index_template(regclass, text, text, text, text) IS
    'Adds an index every partition gets (<partition>_<suffix>) and back-fills existing partitions';

CREATE OR REPLACE FUNCTION timepart.drop_index_template(parent regclass, suffix text) RETURNS boolean
LANGUAGE plpgsql AS $$
/* Forgets a template. Existing indexes stay; drop the parent's index yourself to remove them all. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
BEGIN
    IF NOT timepart._template_drop(drop_index_template.parent, drop_index_template.suffix) THEN
        RAISE NOTICE 'no index template "%" on %', suffix, parent;
        RETURN false;
    END IF;
    CALL timepart._log('drop_index_template', parent, NULL, true, jsonb_build_object('suffix', suffix), NULL, started);
    RETURN true;
END $$;
COMMENT ON FUNCTION timepart.drop_index_template(regclass, text) IS 'Stops adding an index to new partitions; existing indexes stay';

-- Index templates are checked as text, however they arrive (the API or a direct
-- INSERT): the column list and the condition must each stay inside the parentheses
-- timepart puts them in, so no clause (TABLESPACE, WITH, a second statement) can be
-- smuggled into the CREATE INDEX it builds.
CREATE OR REPLACE FUNCTION timepart._check_template_text(txt text, what text) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    i int := 1;
    n int := length(txt);
    c text;
    depth int := 0;
    bad text;
BEGIN
    IF txt IS NULL OR btrim(txt) = '' THEN
        bad := 'it is empty';
    END IF;
    WHILE bad IS NULL AND i <= n LOOP
        c := substr(txt, i, 1);
        IF c = '''' OR c = '"' THEN
            i := i + 1;
            LOOP
                IF i > n THEN bad := 'a quote is not closed'; EXIT; END IF;
                IF substr(txt, i, 1) = '\' THEN bad := 'it holds a backslash'; EXIT; END IF;
                IF substr(txt, i, 1) = c THEN
                    IF substr(txt, i + 1, 1) = c THEN i := i + 2; CONTINUE; END IF;
                    EXIT;
                END IF;
                i := i + 1;
            END LOOP;
        ELSIF c = '(' THEN depth := depth + 1;
        ELSIF c = ')' THEN
            depth := depth - 1;
            IF depth < 0 THEN bad := 'a parenthesis closes that was never opened'; END IF;
        ELSIF c IN (';', '\', '$') THEN bad := format('it holds %s', c);
        ELSIF substr(txt, i, 2) IN ('--', '/*') THEN bad := 'it holds a comment';
        END IF;
        i := i + 1;
    END LOOP;
    IF bad IS NULL AND depth <> 0 THEN
        bad := 'a parenthesis is not closed';
    END IF;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'invalid index template definition' USING ERRCODE = '22023',
            DETAIL = format('The %s is refused: %s. Got %s.', what, bad, coalesce(txt, 'NULL')),
            HINT = 'Give a column list such as ''workspace_id, created_at DESC'' and an optional condition such as '
                   '''status = ''''open''''''; no semicolons, comments, backslashes, dollar quotes or unbalanced parentheses.';
    END IF;
END $$;

-- The refusal for a template that cannot be built as it stands: add_index_template and
-- the trigger below (direct INSERTs and UPDATEs) check the same way.
CREATE OR REPLACE FUNCTION timepart._check_template(t timepart.index_templates) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF t.suffix IS NULL OR t.suffix !~ '^[a-z0-9_]{1,40}$' THEN
        RAISE EXCEPTION 'invalid index template suffix "%"', t.suffix USING ERRCODE = '22023',
            DETAIL = 'A suffix is 1 to 40 characters of a-z, 0-9 and _.', HINT = 'Use a name such as workspace_created_idx.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_am a WHERE a.amname = t.method AND a.amtype = 'i') THEN
        RAISE EXCEPTION 'unknown index method "%"', t.method USING ERRCODE = '22023',
            DETAIL = 'It is not an index access method of this database.', HINT = 'Use btree, hash, gist, gin or brin.';
    END IF;
    PERFORM timepart._check_template_text(t.columns, 'column list');
    IF t.where_clause IS NOT NULL THEN
        PERFORM timepart._check_template_text(t.where_clause, 'condition');
    END IF;
END $$;

CREATE OR REPLACE FUNCTION timepart._template_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM timepart._check_template(NEW);
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS index_templates_checked ON timepart.index_templates;
CREATE TRIGGER index_templates_checked BEFORE INSERT OR UPDATE ON timepart.index_templates
    FOR EACH ROW EXECUTE FUNCTION timepart._template_guard();
