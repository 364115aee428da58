#!/usr/bin/env python3
"""Drafts an upgrade script: the statements of NEW (a full version script) that are
not in OLD, in NEW's order. Functions are matched by name and argument list, so a
changed body comes out as its CREATE OR REPLACE. Review the draft before committing:
dropped objects and changed tables need hand-written statements.
    tools/sqldelta.py OLD.sql NEW.sql > extension/timepart--A--B.sql"""
import re
import sys


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
    return [s for s in out if re.sub(r"--[^\n]*", "", s).strip(" \n;")]


def key(stmt):
    body = re.sub(r"^(\s*--[^\n]*\n)*", "", stmt)
    m = re.match(r"CREATE OR REPLACE (FUNCTION|PROCEDURE|VIEW)\s+([\w.]+)\s*(\([^)]*\))?", body, re.S)
    if m:
        args = re.sub(r"\s+DEFAULT\s+[^,)]+", "", m.group(3) or "")
        return (m.group(1), m.group(2), re.sub(r"\s+", " ", args))
    return ("stmt", re.sub(r"\s+", " ", re.sub(r"--[^\n]*", "", body)).strip())


def code(stmt):
    """A statement without its comment lines, for comparing."""
    return re.sub(r"^\s*--[^\n]*\n?", "", stmt, flags=re.M).strip()


def main(old_path, new_path):
    old = {key(s): code(s) for s in statements(open(old_path).read())}
    for stmt in statements(open(new_path).read()):
        if old.get(key(stmt)) != code(stmt):
            print(stmt + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
