"""timepart: install, upgrade and operate the timepart PostgreSQL extension."""

__version__ = "0.1.0"
