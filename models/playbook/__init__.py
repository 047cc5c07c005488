"""What to do about a hypothesis: the catalog of verification tasks and fixes per fault type, how a
verification's results are read, and the collection plans. Reads ``models.domain`` only."""

from contract import PlannedTask
from models.playbook._catalog import FIX_PRIORS, FixHistory, fix_suggestions, success_rate, verification_tasks
from models.playbook._verification import interpret_verification, windowed

__all__ = [
    "FIX_PRIORS",
    "FixHistory",
    "PlannedTask",
    "fix_suggestions",
    "interpret_verification",
    "success_rate",
    "verification_tasks",
    "windowed",
]
