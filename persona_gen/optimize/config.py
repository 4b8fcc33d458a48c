"""Schema of the ``optimize`` config group: which DSPy optimizer, its budget, the split and the report.

The dataclasses live with every other group's schema in ``persona_gen.core.config``; they are re-exported here.
"""

from __future__ import annotations

from persona_gen.core.config import OPTIMIZERS, BootstrapFewShotConfig, GEPAConfig, MIPROv2Config, OptimizeConfig

__all__ = ["OPTIMIZERS", "BootstrapFewShotConfig", "GEPAConfig", "MIPROv2Config", "OptimizeConfig"]
