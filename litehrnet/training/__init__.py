"""Training: the loop (:mod:`.trainer`), loss, schedule, checkpoints, logging, distributed helpers.

``predict.py`` (model inference over a dataset + metrics, used for validation) belongs to the
evaluation work. Heavy pieces are imported lazily so that ``from litehrnet.training import
TrainingError`` stays cheap.
"""

from .checkpointing import CheckpointKeeper, TrainingError, load_training_checkpoint, save_atomic
from .loss import JointsMSELoss
from .schedule import WarmupStepSchedule, build_optimizer, scaled_lr

__all__ = [
    "CheckpointKeeper", "JointsMSELoss", "TrainingError", "WarmupStepSchedule", "build_optimizer",
    "load_training_checkpoint", "save_atomic", "scaled_lr",
]
