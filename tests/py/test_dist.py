"""The PGXN package: META.json in step with the control file, and `make dist` builds a zip
that carries the extension (base, chain and the newest full script) and its metadata."""
import os
import json
import subprocess
import zipfile
from pathlib import Path

from timepart import build

ROOT = Path(__file__).resolve().parents[2]
META = json.loads((ROOT / "META.json").read_text())
CONTROL = (ROOT / "extension" / "timepart.control").read_text()


def semver(version):
    parts = version.split(".")
    return ".".join(parts + ["0"] * (3 - len(parts)))


def test_meta_json_is_in_step_with_the_control_file():
    version = build.control_version(ROOT / "extension" / "timepart.control")
    assert META["name"] == "timepart" and "timepart" in META["provides"]
    assert META["version"] == META["provides"]["timepart"]["version"] == semver(version)
    assert META["abstract"] in CONTROL  # the control file's comment is the abstract
    assert META["license"] == "postgresql" and META["meta-spec"]["version"] == "1.0.0"
    assert META["prereqs"]["runtime"]["requires"]["PostgreSQL"] == "15.0.0"
    assert (ROOT / META["provides"]["timepart"]["file"]).is_file()


def test_make_dist_builds_the_pgxn_zip():
    # As a person runs it: not as a sub-make of whatever make started the tests (its
    # MAKEFLAGS would print "Entering directory" lines).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    result = subprocess.run(["make", "-s", "dist"], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    version = build.control_version(ROOT / "extension" / "timepart.control")
    prefix = f"timepart-{META['version']}"
    path = ROOT / "dist" / f"{prefix}.zip"
    assert result.stdout.strip() == f"dist/{prefix}.zip"
    names = set(zipfile.ZipFile(path).namelist())
    for name in ["META.json", "README.md", "Makefile", "extension/Makefile", "extension/timepart.control",
                 "extension/timepart--0.1.sql", f"extension/timepart--{version}.sql", "installer/timepart/build.py"]:
        assert f"{prefix}/{name}" in names
    assert any(n.startswith(f"{prefix}/extension/updates/timepart--") for n in names)
    assert not any("/.pg" in n or "/.venv/" in n for n in names)
    full = zipfile.ZipFile(path).read(f"{prefix}/extension/timepart--{version}.sql").decode()
    assert full == build.full_script(ROOT / "extension" / "src", version)
