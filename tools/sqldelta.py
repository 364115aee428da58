#!/usr/bin/env python3
"""Assembles the next upgrade script (`make delta` in extension/):
  1. the hand-written statements waiting in pending.sql (ALTER TABLE, renames, data);
  2. DROPs for functions, procedures and views the new source no longer has, or whose
     argument names or result changed (CREATE OR REPLACE cannot change those);
  3. every statement of the new full script that the released chain does not have
     already, in the new script's order: changed function bodies, new objects, changed
     comments (a re-created function gets its comment again);
  4. the closing `SELECT timepart._harden();` (grants and ownership for everything);
and opens with the pinned search_path every script runs with (PATH).
The released state is the base script plus the chain, later statements winning.
Tables, types, indexes and triggers that exist already are never re-created: their
changes belong in pending.sql, and tests/pgtap/upgrade.sql proves the result.
    tools/sqldelta.py --from 0.8 --to 0.9 --pending pending.sql --new NEW.sql BASE.sql UPDATES_DIR"""
import argparse
import re
import sys
from pathlib import Path

HARDEN = "SELECT timepart._harden();"
# Every script binds the names in its statements (SQL-standard function bodies, defaults,
# constraints) with pg_catalog first and pg_temp last, whatever the session's path.
PATH = "SET LOCAL search_path = pg_catalog, pg_temp;"
PATH_END = "SET LOCAL search_path TO DEFAULT;"  # the rest of an installer's transaction
# The seed-name event trigger stays out of the script's own DDL (its functions are being
# replaced, unpinned until _harden runs, and would run for every statement): off in this
# transaction only, which other sessions never see; _harden turns it on again.
QUIET = ("DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e WHERE e.evtname = 'timepart_seed_names') "
         "AND (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) "
         "THEN ALTER EVENT TRIGGER timepart_seed_names DISABLE; END IF; END $$;")
# A statement marked so checks a fresh install only (a schema or roles found there); an
# upgrade finds them as an earlier version left them, and must not run it.
INSTALL_ONLY = "-- (fresh install only)"


def statements(text):
    """Top-level statements, splitting on ';' outside quotes, comments and dollar quotes."""
    out, buf, i, n = [], [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("--", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            buf.append(text[i:j]); i = j
        elif c == "$":
            m = re.match(r"\$[A-Za-z_]*\$", text[i:])
            if m:
                tag = m.group(0)
                j = text.find(tag, i + len(tag))
                buf.append(text[i:j + len(tag)]); i = j + len(tag)
                continue
            buf.append(c); i += 1
        elif c == "'":
            j = i + 1
            while j < n and not (text[j] == "'" and text[j + 1:j + 2] != "'"):
                j += 2 if text[j:j + 2] == "''" else 1
            buf.append(text[i:j + 1]); i = j + 1
        elif c == ";":
            out.append("".join(buf).strip() + ";"); buf = []; i += 1
        else:
            buf.append(c); i += 1
    return _atomic([s for s in out if code(s).strip(" \n;")])


def _atomic(stmts):
    """Joins the statements of a SQL-standard function body (BEGIN ATOMIC ... END) back
    into the CREATE FUNCTION they belong to: their semicolons do not end it."""
    def bare(stmt):  # the statement without its quoted text
        return re.sub(r"(\$[A-Za-z_]*\$).*?\1|'(?:[^']|'')*'", "''", code(stmt), flags=re.S)
    out = []
    for s in stmts:
        if out and re.search(r"\bBEGIN\s+ATOMIC\b", bare(out[-1]), re.I) and not re.search(r"(^|\n)\s*END\s*;$", bare(out[-1]), re.I):
            out[-1] = out[-1] + "\n" + s
        else:
            out.append(s)
    return out


def code(stmt):
    """A statement without its comment lines, for comparing."""
    return re.sub(r"^\s*--[^\n]*\n?", "", stmt, flags=re.M).strip()


_TYPE_NAMES = {"int": "integer", "int4": "integer", "int8": "bigint", "int2": "smallint", "bool": "boolean",
               "timestamptz": "timestamp with time zone", "float8": "double precision", "varchar": "character varying"}


def type_name(t):
    """One spelling per type, as PostgreSQL sees it: pg_catalog.int4 and integer are one."""
    t = re.sub(r"^pg_catalog\.", "", re.sub(r"\s+", " ", t.strip().lower()))
    return _TYPE_NAMES.get(t, t)


def split_args(args):
    """Top-level comma split of an argument list (defaults may hold parentheses)."""
    parts, depth, buf = [], 0, ""
    for ch in args:
        if ch == "," and depth == 0:
            parts.append(buf); buf = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        buf += ch
    return [p.strip() for p in parts + [buf] if p.strip()]


def routine(stmt):
    """For CREATE FUNCTION/PROCEDURE: (kind, name, input types, argument names, result)."""
    body = code(stmt)
    m = re.match(r"CREATE (?:OR REPLACE )?(FUNCTION|PROCEDURE)\s+([\w.]+)\s*\(", body)
    if not m:
        return None
    depth, i = 1, m.end()
    while depth:
        depth += {"(": 1, ")": -1}.get(body[i], 0)
        i += 1
    types, names = [], []
    for arg in split_args(body[m.end():i - 1]):
        arg = re.split(r"\s+DEFAULT\s+|\s*=\s*", arg, maxsplit=1, flags=re.I)[0]
        words = arg.split()
        mode = words[0].upper() if words[0].upper() in ("IN", "OUT", "INOUT", "VARIADIC") else "IN"
        words = words[1:] if words[0].upper() in ("IN", "OUT", "INOUT", "VARIADIC") else words
        names.append(words[0])
        if mode != "OUT":
            types.append(type_name(" ".join(words[1:])))
    result = re.match(r"\s*(RETURNS\s+.*?)\s+(LANGUAGE|AS|SECURITY|SET|STABLE|IMMUTABLE|VOLATILE)\b",
                      body[i:], re.S | re.I)
    return m.group(1), m.group(2), tuple(types), tuple(names), re.sub(r"\s+", " ", result.group(1)) if result else ""


def key(stmt):
    """What a statement defines: routines by name and input types, named objects by
    name, anything else by its text."""
    r = routine(stmt)
    if r:
        return (r[0], r[1], r[2])
    body = code(stmt)
    m = re.match(r"CREATE (?:OR REPLACE )?(?:UNIQUE )?(VIEW|TABLE|TYPE|SCHEMA|INDEX|TRIGGER)\s+(?:IF NOT EXISTS\s+)?([\w.]+)",
                 body)
    if m:
        return (m.group(1), m.group(2))
    return ("stmt", re.sub(r"\s+", " ", body))


def released(base, updates, target):
    """The released state: key -> statement, after the base and the chain up to target."""
    state = {}
    steps = {}
    for f in Path(updates).glob("timepart--*--*.sql"):
        a, b = re.match(r"timepart--(.+)--(.+)\.sql$", f.name).groups()
        steps[a] = (b, f)
    files, v = [Path(base)], re.match(r"timepart--(.+)\.sql$", Path(base).name).group(1)
    while v != target:
        if v not in steps:
            sys.exit(f"sqldelta: no chain from the base to {target} (stuck at {v})")
        v, f = steps[v]
        files.append(f)
    for f in files:
        for s in statements(f.read_text()):
            m = re.match(r"DROP (FUNCTION|PROCEDURE|VIEW) (?:IF EXISTS )?([\w.]+)", code(s))
            if m:  # a dropped object leaves the state
                for k in [k for k in state if k[0] == m.group(1) and k[1] == m.group(2)]:
                    del state[k]
            state[key(s)] = s
    return state


def delta(old, new_text, pending, source, target):
    new = statements(new_text)
    new_keys = {key(s) for s in new}
    out = [f"-- timepart {source} -> {target}: assembled by `make delta` (tools/sqldelta.py) from\n"
           f"-- extension/pending.sql, the differences from the released chain, and the hardening call."]
    out += [PATH, QUIET]
    pending = re.sub(r"\A(\s*--[^\n]*\n)*", "", pending)  # the file's own header stays there
    if pending.strip():
        out.append("-- ---- pending.sql\n" + pending.strip())
    drops, recreated = [], set()
    for k, s in old.items():
        if k[0] in ("FUNCTION", "PROCEDURE", "VIEW") and k not in new_keys:
            drops.append(f"DROP {k[0]} IF EXISTS {k[1]}{'(' + ', '.join(k[2]) + ')' if k[0] != 'VIEW' else ''};")
    for s in new:
        k, r = key(s), routine(s)
        if r and k in old and (routine(old[k])[3] != r[3] or routine(old[k])[4] != r[4]):
            drops.append(f"DROP {r[0]} IF EXISTS {r[1]}({', '.join(r[2])});")
            recreated.add(r[1])
    if drops:
        out.append("-- ---- gone, or changed in a way CREATE OR REPLACE cannot do\n" + "\n".join(drops))
    body, kept_tables = [], []
    for s in new:
        k = key(s)
        if code(s) in (HARDEN, PATH, PATH_END) or INSTALL_ONLY in s:
            continue
        comment_of = re.match(r"COMMENT ON (?:FUNCTION|PROCEDURE) ([\w.]+)\(", code(s))
        if k in old and k[0] in ("TABLE", "TYPE", "SCHEMA", "INDEX", "TRIGGER"):
            kept_tables += [k[1]] if code(old[k]) != code(s) else []
            continue
        if k in old and code(old[k]) == code(s) and not (comment_of and comment_of.group(1) in recreated):
            continue
        body.append(s)
    if body:
        out.append("-- ---- new and changed\n" + "\n\n".join(body))
    if kept_tables:
        print(f"sqldelta: not re-created (they exist): {', '.join(kept_tables)}; changes to them go in pending.sql",
              file=sys.stderr)
    out += [HARDEN, PATH_END]
    return "\n\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from", dest="source", required=True)
    ap.add_argument("--to", dest="target", required=True)
    ap.add_argument("--pending", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--existing", help="the delta as committed now, if any: guards a released version")
    ap.add_argument("base")
    ap.add_argument("updates")
    a = ap.parse_args()
    pending = Path(a.pending).read_text()
    if a.existing and Path(a.existing).is_file() and "-- ---- pending.sql" in Path(a.existing).read_text() \
            and not re.sub(r"\A(\s*--[^\n]*\n)*", "", pending).strip():
        sys.exit(f"sqldelta: {a.existing} holds hand-written statements that pending.sql no longer has: "
                 f"{a.target} was released; bump default_version in timepart.control before the next change")
    old = released(a.base, a.updates, a.source)
    sys.stdout.write(delta(old, Path(a.new).read_text(), pending, a.source, a.target))


if __name__ == "__main__":
    main()
