"""kube-etl's operator: watches ETLTasks, enforces dependencies and mutual exclusion, runs pods.

`etl-operator` (in `__main__`) starts kopf with the handlers in `handlers`; the decisions live in the
reconciler, the rules in `_rules`, and the phase names in `phases`.
"""

from ._settings import OperatorSettings, SettingsError
from .phases import ConditionType, Phase, Reason

__all__ = ["ConditionType", "OperatorSettings", "Phase", "Reason", "SettingsError"]
