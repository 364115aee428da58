#!/usr/bin/env python3
"""make dist: the PGXN distribution dist/timepart-<version>.zip. It holds what git tracks
(META.json at the top, as PGXN wants) plus the newest full script built from
extension/src, so `make install` from the zip needs no build step for the SQL."""
import json
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "installer" / "timepart"))
import build  # noqa: E402  (the one recipe for the full script)


def main():
    meta = json.loads((ROOT / "META.json").read_text())
    version = build.control_version(ROOT / "extension" / "timepart.control")
    if meta["version"] != semver(version) or meta["provides"]["timepart"]["version"] != meta["version"]:
        sys.exit(f"dist: META.json says {meta['version']}, the control file {version}: bring them in step")
    prefix = f"timepart-{meta['version']}"
    out = ROOT / "dist" / f"{prefix}.zip"
    out.parent.mkdir(exist_ok=True)
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(n for n in tracked.split("\0") if n and (ROOT / n).is_file()):
            z.write(ROOT / name, f"{prefix}/{name}")
        z.writestr(f"{prefix}/extension/timepart--{version}.sql", build.full_script(ROOT / "extension" / "src", version))
    print(out.relative_to(ROOT))


def semver(version: str) -> str:
    """PGXN versions are semantic: 0.9 is 0.9.0."""
    parts = version.split(".")
    return ".".join(parts + ["0"] * (3 - len(parts)))


if __name__ == "__main__":
    main()
