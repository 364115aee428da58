"""Every name the Python package (and the exporter's queries file) sends resolves where
timepart means it to. PostgreSQL looks relation and type names up in pg_temp first, and
functions and operators along the search_path, so each SQL string names them with their
schema: casts ::pg_catalog.x, calls pg_catalog.f(...) or timepart.f(...), relations
pg_catalog.pg_class or timepart.config, operators OPERATOR(pg_catalog.=).

This reads the source (no database): every string literal, f-string and `+` of strings that
looks like SQL, and every `query:` of monitoring/postgres_exporter.yml. The dynamic side
(hostile temporary objects, the real calls) is tests/py/test_hostile_session.py."""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "installer" / "timepart"
EXPORTER = ROOT / "monitoring" / "postgres_exporter.yml"
SCHEMAS = ("pg_catalog.", "timepart.")

# A string is SQL when it opens with one of these words, in capitals as the package writes
# SQL (messages and help texts that quote SQL, "run ALTER SCHEMA ...", open with prose).
_LOOKS_LIKE_SQL = re.compile(r"^\s*\(?\s*(SELECT|WITH|CALL|INSERT|UPDATE|DELETE|FROM|JOIN|WHERE|AND|OR|ORDER|"
                             r"GROUP|RETURNING|LISTEN|NOTIFY|CREATE|ALTER|DROP|GRANT|REVOKE|SET|DO|VALUES|TABLE)\b")
# Words of the grammar that may stand before "(" (none is a function looked up by name).
_GRAMMAR = {
    "ALL", "AND", "ANY", "ARRAY", "AS", "BY", "DISTINCT", "ELSE", "EXISTS", "EXTENSION", "FILTER", "FROM", "IN",
    "INTO", "IS", "JOIN", "LATERAL", "NOT", "ON", "OPERATOR", "OR", "OVER", "ROW", "SELECT", "SOME", "THEN",
    "UNION", "USING", "VALUES", "VERSION", "WHEN", "WHERE", "WITH", "CASE", "TO", "UPDATE",
}
# Words after which FROM/JOIN's next word is not a relation, and what may follow a relation.
_CLAUSE_END = {"WHERE", "GROUP", "ORDER", "LIMIT", "OFFSET", "HAVING", "WINDOW", "UNION", "JOIN", "LEFT", "RIGHT",
               "INNER", "FULL", "CROSS", "ON", "USING", "FOR", "RETURNING", "NATURAL", "EXCEPT", "INTERSECT"}
_TYPE_WORDS = ("regclass|regprocedure|regproc|regrole|regnamespace|regtype|text|jsonb|json|timestamptz|timestamp|"
               "date|time|interval|int2|int4|int8|integer|bigint|smallint|numeric|boolean|bool|name|oid|uuid|float8")
_TYPED_LITERAL = re.compile(rf"(?<![\w.])({_TYPE_WORDS})\s+'", re.IGNORECASE)
_REGPROCEDURE = re.compile(r"to_regprocedure\(\s*'[^']*?\(([^']*)\)'", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"%\(\w+\)s|%s|\{[^{}]*\}|\$\d+")
_OPERATOR = re.compile(r"OPERATOR\s*\(\s*([\w.]+)\s*\.\s*([^\s)]+)\s*\)", re.IGNORECASE)
_TOKEN = re.compile(r"[A-Za-z_][\w$]*(?:\.[A-Za-z_*][\w$]*)*|\d+(?:\.\d+)?|::|=>|\[\]|[(),\[\]]"
                    r"|[^\sA-Za-z_\d(),\[\]]+")
_CTE = re.compile(r"(?:\bWITH|,)\s*(\w+)\s*(?:\([^()]*\))?\s*AS\s*\(", re.IGNORECASE)


def _strip(text: str) -> str:
    """The SQL with comments, string literals, quoted identifiers and placeholders made
    neutral, so that what is left is names, keywords and operators."""
    text = re.sub(r"--[^\n]*", " ", text)
    text = re.sub(r"[Ee]?'(?:[^']|'')*'", " '' ", text)
    text = re.sub(r'"(?:[^"]|"")*"', " quoted_name ", text)
    return _PLACEHOLDER.sub(" $p ", text)


def problems(sql: str) -> list:
    """What in one SQL string is not named with its schema."""
    found = []
    for args in _REGPROCEDURE.findall(sql):
        found += [f"unqualified type {t.strip()!r} in to_regprocedure" for t in args.split(",")
                  if t.strip() and not t.strip().startswith(SCHEMAS)]
    found += [f"typed literal {m.group(0)!r}: use '...'::pg_catalog.{m.group(1)}"
              for m in _TYPED_LITERAL.finditer(_strip_keep_literals(sql))]
    text = _strip(sql)
    checked_ops = []
    for schema, op in _OPERATOR.findall(text):
        if schema != "pg_catalog":
            found.append(f"operator {op} of schema {schema}")
        checked_ops.append(op)
    text = _OPERATOR.sub(" ", text)
    ctes = {name.lower() for name in _CTE.findall(text)}
    tokens = _TOKEN.findall(text)
    upper = [t.upper() for t in tokens]
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        prev = upper[i - 1] if i else ""
        if tok == "::":
            if not nxt.startswith(SCHEMAS):
                found.append(f"cast ::{nxt}: write ::pg_catalog.{nxt}")
        elif upper[i] == "CAST" and nxt == "(":
            found.append("CAST(... AS type): write ...::pg_catalog.type")
        elif nxt == "(" and re.match(r"[A-Za-z_]", tok) and "." not in tok and upper[i] not in _GRAMMAR \
                and tok.lower() not in ctes and prev != "AS":
            found.append(f"unqualified function {tok}(...)")
        elif upper[i] in ("FROM", "JOIN") and prev not in ("DISTINCT",):
            found += _relations(tokens, i + 1, ctes)
        elif not re.match(r"[A-Za-z_\d$'(),\[\]]", tok) and tok not in ("::", "=>", "[]", "''", "$p"):
            if tok == "*" and (prev in ("SELECT", ",", "(") or nxt in (")", "FROM")):
                continue  # SELECT *, count(*): no operator
            if tok == "." and nxt == "*":
                continue
            found.append(f"bare operator {tok}: write OPERATOR(pg_catalog.{tok})")
    return found


def _strip_keep_literals(sql: str) -> str:
    return _PLACEHOLDER.sub(" $p ", re.sub(r'"(?:[^"]|"")*"', " quoted_name ", sql))


def _relations(tokens, i, ctes) -> list:
    """The relations of a FROM list (or a JOIN) starting at tokens[i]: each must be
    schema-qualified, a subquery, a CTE or a placeholder."""
    found = []
    while i < len(tokens):
        while i < len(tokens) and tokens[i].upper() in ("LATERAL", "ONLY"):
            i += 1
        if i >= len(tokens):
            break
        tok = tokens[i]
        if tok == "(":
            i = _skip_parens(tokens, i)
        else:
            if not (tok.startswith(SCHEMAS) or tok.lower() in ctes or tok == "$p" or "." in tok):
                found.append(f"unqualified relation {tok}")
            elif "." in tok and not tok.startswith(SCHEMAS):
                found.append(f"relation {tok} outside pg_catalog and timepart")
            i += 1
            if i < len(tokens) and tokens[i] == "(":  # a function in FROM
                i = _skip_parens(tokens, i)
        if i < len(tokens) and tokens[i].upper() == "AS":
            i += 1
        if i < len(tokens) and re.match(r"[A-Za-z_]\w*$", tokens[i]) and tokens[i].upper() not in _CLAUSE_END:
            i += 1  # the alias
        if i < len(tokens) and tokens[i] == ",":
            i += 1
            continue
        break
    return found


def _skip_parens(tokens, i) -> int:
    depth = 0
    while i < len(tokens):
        depth += {"(": 1, ")": -1}.get(tokens[i], 0)
        i += 1
        if depth == 0:
            break
    return i


# ---- where the SQL is -------------------------------------------------------------

def _text(node):
    """A string expression's text ({} for formatted parts), or None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left), _text(node.right)
        if left is not None and right is not None:
            return left + right
    return None


def python_sql(path: Path):
    """(line, text) of every SQL-looking string in a module, docstrings excepted."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings, inner = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body \
                and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant):
            docstrings.add(id(node.body[0].value))
    for node in ast.walk(tree):
        if id(node) in docstrings or id(node) in inner:
            continue
        text = _text(node)
        if text is None:
            continue
        inner.update(id(n) for n in ast.walk(node) if n is not node)
        if _LOOKS_LIKE_SQL.search(text):
            yield node.lineno, text


def exporter_sql(path: Path):
    """(line, text) of every `query: |` block of the exporter's queries file."""
    lines = path.read_text().splitlines()
    for n, line in enumerate(lines):
        if line.strip() == "query: |":
            indent = len(line) - len(line.lstrip())
            block = []
            for body in lines[n + 1:]:
                if body.strip() and len(body) - len(body.lstrip()) <= indent:
                    break
                block.append(body)
            yield n + 2, "\n".join(block)


def every_sql():
    for path in sorted(PACKAGE.glob("*.py")):
        for line, text in python_sql(path):
            yield path.relative_to(ROOT), line, text
    for line, text in exporter_sql(EXPORTER):
        yield EXPORTER.relative_to(ROOT), line, text


def test_every_name_sent_is_qualified():
    report = [f"{path}:{line}: {problem}: {' '.join(text.split())[:160]}"
              for path, line, text in every_sql() for problem in problems(text)]
    assert not report, "unqualified names in SQL the package sends:\n" + "\n".join(report)


def test_the_check_reads_every_module_and_query():
    found = list(every_sql())
    files = {str(path) for path, _, _ in found}
    for name in ("client.py", "install.py", "migrate.py", "report.py", "db.py"):
        assert f"installer/timepart/{name}" in files, name
    assert sum(1 for path, _, _ in found if path.name == "postgres_exporter.yml") == 4
    assert len(found) > 40


@pytest.mark.parametrize("sql, expected", [
    ("SELECT x::regclass", "cast ::regclass"),
    ("SELECT x::pg_catalog.text::interval", "cast ::interval"),
    ("SELECT count(*) FROM pg_catalog.pg_class", "unqualified function count"),
    ("SELECT row_to_json(a) FROM timepart.open_alerts a", "unqualified function row_to_json"),
    ("SELECT 1 FROM pg_class", "unqualified relation pg_class"),
    ("SELECT 1 FROM pg_catalog.pg_class c JOIN pg_namespace n ON true", "unqualified relation pg_namespace"),
    ("SELECT 1 FROM timepart.period_of(x) s, open_alerts e", "unqualified relation open_alerts"),
    ("SELECT * FROM timepart.open_alerts WHERE a = b", "bare operator ="),
    ("SELECT m.labels->>'table' FROM timepart.metrics m", "bare operator ->>"),
    ("SELECT 1 FROM timepart.config c WHERE c.x OPERATOR(public.=) 1", "operator = of schema public"),
    ("SELECT pg_catalog.to_regprocedure('timepart.f(name, timestamptz)')", "unqualified type 'name'"),
    ("SELECT interval '1 day'", "typed literal"),
    ("SELECT CAST(x AS text)", "CAST("),
    ("SELECT 1 FROM public.email_events", "relation public.email_events outside"),
])
def test_the_check_finds_each_kind_of_unqualified_name(sql, expected):
    assert any(expected in p for p in problems(sql)), problems(sql)


@pytest.mark.parametrize("sql", [
    "SELECT pg_catalog.count(*) FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) 1",
    "WITH me (a) AS (SELECT 1) SELECT m.a FROM me m",
    "SELECT * FROM timepart.open_alerts a WHERE %s::pg_catalog.regclass IS NULL",
    "SELECT x FROM timepart.f(%(p)s::pg_catalog.int4) f LEFT JOIN LATERAL pg_catalog.g(f.x) d ON true ORDER BY 1",
    "SELECT pg_catalog.max(m.v) FILTER (WHERE m.n OPERATOR(pg_catalog.=) ANY ('{a,b}'::pg_catalog.text[]))",
    "SELECT timepart.create_email_events_table(settings => %s::pg_catalog.jsonb)",
    "SELECT 'a = b, count(x) FROM y'",
    "SELECT * FROM timepart.get_maintenance_log(20) ORDER BY 1 LIMIT 5",
])
def test_the_check_passes_qualified_sql(sql):
    assert problems(sql) == []
