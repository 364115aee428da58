"""timepart: install, upgrade and operate the timepart PostgreSQL extension."""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("timepart")  # the extension's default_version, set at build time
except PackageNotFoundError:  # pragma: no cover - running from a checkout without installing
    __version__ = "unknown"
