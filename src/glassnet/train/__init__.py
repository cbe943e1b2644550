"""Training: ``fit``, ``evaluate``, ``predict``, metrics, schedules and checkpoints."""

from glassnet.train.checkpoint import TrainingState, load_checkpoint, save_checkpoint
from glassnet.train.loop import (
    Evaluation,
    TrainingDiverged,
    evaluate,
    fit,
    predict,
    predict_logits,
    train_step,
)
from glassnet.train.metrics import accuracy, confusion_matrix, precision_recall
from glassnet.train.schedules import (
    ConstantLR,
    CosineLR,
    LinearWarmupLR,
    StepLR,
    TriangularLR,
    make_schedule,
    schedule_config,
)

__all__ = [
    "ConstantLR",
    "CosineLR",
    "Evaluation",
    "LinearWarmupLR",
    "StepLR",
    "TrainingDiverged",
    "TrainingState",
    "TriangularLR",
    "accuracy",
    "confusion_matrix",
    "evaluate",
    "fit",
    "load_checkpoint",
    "make_schedule",
    "precision_recall",
    "predict",
    "predict_logits",
    "save_checkpoint",
    "schedule_config",
    "train_step",
]
