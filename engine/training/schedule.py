"""The learning rate of epoch training, step by step: a linear warm-up, then a cosine
decay that ends with the planned steps.

The epoch loop (`engine.training.loop.fit`) sets the optimizer's rate from
`WarmupCosine.rate` before every step, instead of compiling a Keras schedule into
the optimizer, so that the plan can change while training runs: a time budget
(`engine.training.deadline`) that cannot hold every epoch fits it, at each epoch's
end, to the epochs that do, and the decay still ends within the budget rather than the run
stopping at a high rate (budgeted training: Li, Yumer & Ramanan, ICLR 2020).
Keras' schedules are traced into the training step with their length fixed.

No TensorFlow here: the plan is plain arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WARMUP_START = 0.1  # the warm-up starts at this share of the peak rate
FLOOR = 0.05  # the decay ends at this share of the peak rate


@dataclass
class WarmupCosine:
    """``peak`` after a linear warm-up of ``warmup_steps`` from a tenth of it, then a
    cosine decay to 5% of it at ``total_steps`` (and 5% after). Keras' CosineDecay
    with ``warmup_target``, ``alpha=0.05``, in plain Python."""

    peak: float
    total_steps: int
    warmup_steps: int = 0

    def rate(self, step: int) -> float:
        """The learning rate of training step ``step`` (from 0)."""
        if step < self.warmup_steps:
            start = self.peak * WARMUP_START
            return start + (self.peak - start) * step / self.warmup_steps
        decay_steps = max(self.total_steps - self.warmup_steps, 1)
        done = min(step - self.warmup_steps, decay_steps) / decay_steps
        return self.peak * ((1 - FLOOR) * 0.5 * (1 + math.cos(math.pi * done)) + FLOOR)

    def __post_init__(self) -> None:
        self.longest = self.total_steps

    def plan_for(self, steps: int) -> None:
        """End the decay after ``steps`` steps instead (at most the first plan's)."""
        self.total_steps = max(min(self.longest, steps), 1)
