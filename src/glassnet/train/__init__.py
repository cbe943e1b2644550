"""Training: ``fit``, ``evaluate``, ``predict``, metrics, schedules and checkpoints."""

from glassnet.train.checkpoint import TrainingState, load_checkpoint, save_checkpoint
from glassnet.train.ema import WeightAverage
from glassnet.train.loop import (
    TrainingDiverged,
    evaluate,
    fit,
    predict,
    predict_logits,
    train_step,
)
from glassnet.train.metrics import (
    accuracy,
    confusion_matrix,
    iou_per_class,
    mean_iou,
    pixel_accuracy,
    precision_recall,
)
from glassnet.train.schedules import (
    ConstantLR,
    CosineLR,
    LinearWarmupLR,
    StepLR,
    TriangularLR,
    make_schedule,
    schedule_config,
)
from glassnet.train.segmentation import Segmentation, SegmentationEvaluation
from glassnet.train.tasks import Classification, Evaluation, Task

__all__ = [
    "Classification",
    "ConstantLR",
    "CosineLR",
    "Evaluation",
    "LinearWarmupLR",
    "Segmentation",
    "SegmentationEvaluation",
    "StepLR",
    "Task",
    "TrainingDiverged",
    "TrainingState",
    "TriangularLR",
    "WeightAverage",
    "accuracy",
    "confusion_matrix",
    "evaluate",
    "fit",
    "iou_per_class",
    "load_checkpoint",
    "make_schedule",
    "mean_iou",
    "pixel_accuracy",
    "precision_recall",
    "predict",
    "predict_logits",
    "save_checkpoint",
    "schedule_config",
    "train_step",
]
