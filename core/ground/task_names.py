"""The name of every Celery task, in one place: the API and beat send tasks by name, and the
workers register them under the same names, so neither side imports the other."""

from __future__ import annotations

STEP = "discussion.step"
HUMAN_TURN_CHECK = "discussion.human_turn_check"
PARALLEL_TURN = "discussion.parallel_turn"
RECONCILE = "discussion.reconcile"
OPS_TICK = "ops.tick"
BATCH_PUMP = "batch.pump"
