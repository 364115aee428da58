"""Builds the newest full version script from extension/src/*.sql: the one recipe used
by `make` (extension/Makefile), by the package build (hatch_build.py) and by a checkout
install (install.py). Standard library only, so it also runs as a script:
    python3 installer/timepart/build.py extension/src 0.9 > extension/timepart--0.9.sql"""
import sys
from pathlib import Path


def full_script(src: Path, version: str) -> str:
    """The source files in name order, each under a header naming it; @TIMEPART_VERSION@
    (in timepart.version()) becomes the version, so the number is typed only in the control file."""
    parts = [f"-- timepart {version}: generated from extension/src/*.sql by 'make'; edit those, not this file.\n"]
    for f in sorted(Path(src).glob("*.sql")):
        parts.append(f"\n-- ==== src/{f.name}\n{f.read_text()}")
    return "".join(parts).replace("@TIMEPART_VERSION@", version)


def control_version(control: Path) -> str:
    """default_version from the control file."""
    for line in Path(control).read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "default_version":
            return value.strip().strip("'")
    raise ValueError(f"{control} has no default_version")


if __name__ == "__main__":
    sys.stdout.write(full_script(Path(sys.argv[1]), sys.argv[2]))
