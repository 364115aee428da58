"""Build hook: ships the extension's control file and versioned SQL scripts from
../extension inside the wheel (timepart/sql/), so no copy lives in git."""
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


def _extension_files(root):
    # ../extension in a checkout; extension/ inside an sdist built from one.
    for folder in (Path(root).parent / "extension", Path(root) / "extension"):
        files = sorted(folder.glob("timepart.control")) + sorted(folder.glob("timepart--*.sql"))
        if files:
            return files
    raise RuntimeError("timepart: no extension SQL found next to the installer (../extension)")


class ExtensionSqlHook(BuildHookInterface):
    def initialize(self, version, build_data):
        if self.target_name == "wheel" and version == "editable":
            return  # an editable install reads ../extension directly (timepart.install.sql_dir)
        prefix = "timepart/sql" if self.target_name == "wheel" else "extension"
        for f in _extension_files(self.root):
            build_data["force_include"][str(f)] = f"{prefix}/{f.name}"
