"""The seed's PARTITION_MONTHS_AHEAD and PARTITION_RETENTION_MONTHS at run time. They are
the email_events table's settings, so `timepart maintain` and `cleanup` apply them to tables
named email_events only, and only when no option is given. Precedence: the option, then
the environment, then the table's configuration."""
import os
from dataclasses import dataclass
from typing import Awaitable, Callable, List, Mapping, Optional, Tuple

from .client import OperationResult, PartitionManager
from .db import TimepartError

SEED_TABLE = "email_events"
PREMAKE = "PARTITION_MONTHS_AHEAD"
RETENTION = "PARTITION_RETENTION_MONTHS"


_SAYS = {PREMAKE: "premake {}", RETENTION: "retention {} months"}


@dataclass(frozen=True)
class EnvMonths:
    """A number of months read from a seed variable."""
    var: str
    months: int

    def describe(self) -> str:
        """What the variable sets, e.g. "premake 4 (PARTITION_MONTHS_AHEAD)"."""
        return f"{_SAYS[self.var].format(self.months)} ({self.var})"


def months_from_env(var: str, env: Mapping[str, str] = os.environ) -> Optional[EnvMonths]:
    """The variable as a whole number of months, 1 or more; None when it is unset or empty.
    Anything else is refused before any work, so a typo changes nothing."""
    text = env.get(var, "").strip()
    if not text:
        return None
    try:
        months = int(text)
    except ValueError:
        months = 0
    if months < 1:
        raise TimepartError(f"{var} must be a whole number of months, 1 or more; got {text!r}")
    return EnvMonths(var, months)


# call(manager, months): months is the environment's for a seed table, None for the others.
Call = Callable[[PartitionManager, Optional[int]], Awaitable[OperationResult]]


async def run(manager: PartitionManager, setting: Optional[EnvMonths], call: Call) -> Tuple[OperationResult, List[str]]:
    """Runs `call` for the manager's table (or every managed table) with the setting for
    tables named email_events: one call when the setting concerns no table, or covers
    everything asked; else one call a table, merged into one result. Returns the result
    and the tables the setting was applied to."""
    if setting is None:
        return await call(manager, None), []
    tables = await manager.tables()
    seeded = [t.parent for t in tables if t.name == SEED_TABLE]
    if not seeded or len(seeded) == len(tables):
        return await call(manager, setting.months if seeded else None), seeded
    results = [await call(manager.for_table(t.parent), setting.months if t.name == SEED_TABLE else None)
               for t in tables]
    return OperationResult.combined(results), seeded
