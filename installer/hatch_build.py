"""Build hook: ships the extension's control file, base script and upgrade chain from
../extension inside the wheel (timepart/sql/), plus the newest full script built from
../extension/src by timepart/build.py (the same recipe as `make`). No copy lives in git."""
import importlib.util
import tempfile
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from hatchling.metadata.plugin.interface import MetadataHookInterface


def _extension_dir(root):
    # ../extension in a checkout; extension/ inside an sdist built from one.
    for folder in (Path(root).parent / "extension", Path(root) / "extension"):
        if (folder / "timepart.control").is_file() and (folder / "src").is_dir():
            return folder
    raise RuntimeError("timepart: no extension SQL found next to the installer (../extension)")


def _builder(root):
    spec = importlib.util.spec_from_file_location("timepart_build", Path(root) / "timepart" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ExtensionSqlHook(BuildHookInterface):
    def initialize(self, version, build_data):
        if self.target_name == "wheel" and version == "editable":
            return  # an editable install reads ../extension directly (timepart.install.sql_dir)
        ext = _extension_dir(self.root)
        if self.target_name != "wheel":  # an sdist carries the source, to build from later
            for f in [ext / "timepart.control", *sorted(ext.glob("timepart--0.1.sql")),
                      *sorted((ext / "updates").glob("timepart--*.sql")), *sorted((ext / "src").glob("*.sql"))]:
                build_data["force_include"][str(f)] = f"extension/{f.relative_to(ext)}"
            return
        build = _builder(self.root)
        newest = build.control_version(ext / "timepart.control")
        out = Path(tempfile.mkdtemp()) / f"timepart--{newest}.sql"
        out.write_text(build.full_script(ext / "src", newest))
        for f in [ext / "timepart.control", ext / "timepart--0.1.sql", out, *sorted((ext / "updates").glob("timepart--*.sql"))]:
            build_data["force_include"][str(f)] = f"timepart/sql/{f.name}"


class ExtensionVersionHook(MetadataHookInterface):
    """The package's version is the extension's default_version: one number, typed once."""
    def update(self, metadata):
        metadata["version"] = _builder(self.root).control_version(_extension_dir(self.root) / "timepart.control")
