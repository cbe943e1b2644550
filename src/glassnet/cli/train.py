"""``glassnet train``: train a named model on a dataset, save it, report the test accuracy."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from glassnet.cli import _segmentation as segmentation
from glassnet.cli import train_detection
from glassnet.data.augment import PRESETS
from glassnet.train.tta import TTA_MODES

#: Defaults per dataset: the model and the recipe that reaches the published accuracy.
RECIPES: dict[str, dict[str, Any]] = {
    "digits": {"model": "digits-cnn", "epochs": 30, "batch_size": 32, "lr": 2e-3},
    "mnist": {"model": "lenet5", "epochs": 12, "batch_size": 64, "lr": 1e-3},
    "fashion-mnist": {
        "model": "fashion-fast",
        "epochs": 10,
        "batch_size": 128,
        "lr": 0.1,
        "optimizer": "sgd",
        "nesterov": True,
        "weight_decay": 5e-4,
        "decay_norm_bias": False,
        "schedule": "triangular",
        "label_smoothing": 0.1,
        "augment": "flip-translate",
        "tta": "flip",
        "val_fraction": 0.0,
    },
    "cifar10": {
        # cifar-fast's 14 epochs took 197 s each, cifar-whiten's 174 s (0.88 of them: 108
        # against 139 MFLOPs per image): 17 epochs and the evaluation take 50.5 minutes
        "model": "cifar-whiten",
        "epochs": 17,
        "batch_size": 256,
        "lr": 0.2,
        "optimizer": "sgd",
        "nesterov": True,
        "weight_decay": 5e-4,
        "decay_norm_bias": False,
        "schedule": "triangular",
        "label_smoothing": 0.2,
        "augment": "flip-translate",
        "tta": "flip-translate",
        "val_fraction": 0.0,
    },
    "folder": {"model": None, "epochs": 20, "batch_size": 32, "lr": 1e-3},
    segmentation.DATASET: segmentation.RECIPE,
    train_detection.DATASET: train_detection.RECIPE,
}
#: Settings newer than the first run files: an older run resumes with these values.
LATER = {
    "nesterov": False,
    "decay_norm_bias": True,
    "label_smoothing": 0.0,
    "augment": "none",
    "tta": False,
    "ema": None,
    "train_size": None,
    "test_size": None,
    "sync_batchnorm": False,
    "background_weight": 1.0,
    "dice_weight": 0.0,
    "accumulate": 1,
}
COMMON = {
    "optimizer": "adam",
    "momentum": 0.9,
    "weight_decay": 0.0,
    "schedule": "cosine",
    **LATER,
    "val_fraction": 0.1,
    "early_stopping": None,
    "seed": 0,
    "image_size": None,
    "channels": None,
}
#: Settings a resumed run takes from the original run (all but the number of epochs).
RUN_FILE = "run.json"
#: Every setting a run records in its RUN_FILE.
SETTINGS = ("dataset", "data_dir", "model", "epochs", "batch_size", "lr", *COMMON)
CHECKPOINT = "checkpoint.safetensors"
PLOTS = ("curves.png", "filters.png", "confusion.png")
#: Every file a run writes in its output folder.
RUN_FILES = (
    RUN_FILE, CHECKPOINT, "model.safetensors", "history.json", "metrics.json", *PLOTS,
    segmentation.EXAMPLES,  # digit scenes: example test predictions (detection's too)
)  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a CNN on a dataset and report its test accuracy",
        description="Train a CNN and save it with its history, curves and metrics in an output "
        "folder. With no arguments: the small digits CNN on the 8x8 digits shipped with glassnet. "
        "An existing, non-empty output folder is refused unless --overwrite or --resume is given.",
    )
    parser.add_argument(
        "--dataset", choices=sorted(RECIPES), help="the data to train on (default: digits)"
    )
    parser.add_argument(
        "--data-dir",
        help="folder of the dataset files (not for digits; for digit-detection, MNIST's IDX "
        "files to draw the scenes from instead of the bundled digits)",
    )
    parser.add_argument(
        "--model",
        help="architecture: lenet5, digits-cnn, cifar-cnn, cifar-fast, cifar-whiten (its first "
        "layer set from the training images and frozen), fashion-fast or resnet-cifar "
        "(default: the dataset's); any classifier of glassnet.models whose input "
        "fits the images; unet for digit-segmentation, detector for digit-detection",
    )
    parser.add_argument(
        "--epochs", type=_positive_int, help="epochs (default: the dataset's recipe)"
    )
    parser.add_argument(
        "--batch-size", type=_positive_int, help="samples per step (default: recipe)"
    )
    parser.add_argument(
        "--lr", type=_positive_float, help="initial learning rate (default: recipe)"
    )
    parser.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], help="default: adam")
    parser.add_argument("--momentum", type=float, help="SGD momentum (default 0.9)")
    parser.add_argument(
        "--nesterov", action=argparse.BooleanOptionalAction, help="SGD Nesterov momentum"
    )
    parser.add_argument("--weight-decay", type=float, help="default 0")
    parser.add_argument(
        "--decay-norm-bias",
        action=argparse.BooleanOptionalAction,
        help="weight decay on biases and BatchNorm scales and shifts too (default: yes)",
    )
    parser.add_argument(
        "--schedule",
        choices=["constant", "step", "cosine", "triangular"],
        help="learning-rate schedule: per epoch constant, step or cosine (default); per step "
        "triangular (up from lr/5 to lr over the first 20%% of the steps, down to 0 at the end)",
    )
    parser.add_argument(
        "--label-smoothing", type=_fraction, help="cross-entropy label smoothing (default 0)"
    )
    parser.add_argument(
        "--augment",
        choices=sorted(PRESETS),
        help="training augmentation, run on a background thread (default none; see "
        "glassnet.data.augment.PRESETS)",
    )
    parser.add_argument(
        "--tta",
        nargs="?",
        const="flip",
        choices=["none", *TTA_MODES],
        help="evaluate with test-time augmentation: flip (alone: each image's and its "
        "mirror's scores averaged) or flip-translate (also moved a pixel; classifiers only). "
        "Default none",
    )
    parser.add_argument(
        "--ema",
        type=_fraction,
        metavar="DECAY",
        help="evaluate and save a moving average of the weights with this decay per step",
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        help="share of the training set held out for validation (default 0.1)",
    )
    parser.add_argument(
        "--early-stopping",
        type=_positive_int,
        metavar="PATIENCE",
        help="stop after PATIENCE epochs without a better validation loss",
    )
    parser.add_argument(
        "--seed", type=_int_at_least(0), help="seed of weights, split and order (default 0)"
    )
    parser.add_argument(
        "--image-size", help="H,W for --dataset folder; the canvas S,S of digit-segmentation"
    )
    parser.add_argument(
        "--channels", type=int, help="1 or 3 for --dataset folder; 3: colour digit scenes"
    )
    segmentation.add_options(parser)
    parser.add_argument(
        "--download",
        action="store_true",
        help="mnist, fashion-mnist, cifar10: fetch the files (checksums verified) into --data-dir, "
        "default $GLASSNET_CACHE_DIR, else $XDG_CACHE_HOME/glassnet or ~/.cache/glassnet, unless "
        "they are there already",
    )
    parser.add_argument("--out", help="output folder (default: runs/<dataset>-<model>-<time>)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run in an existing --out folder (its run files are removed first)",
    )
    parser.add_argument("--resume", metavar="CKPT", help="continue from a checkpoint file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG curves/filters")
    parser.add_argument(
        "--accumulate",
        type=_positive_int,
        metavar="K",
        help="cut each batch into K micro-batches run one after the other, one update from "
        "their summed gradients (less memory; the training of K ranks with per-rank BatchNorm, "
        "bit for bit). Default 1",
    )
    parser.add_argument(
        "--sync-batchnorm",
        action="store_true",
        default=None,  # not given: the recipe's (or the resumed run's) setting
        help="under mpiexec: BatchNorm statistics over the whole global batch, not each rank's "
        "share",
    )
    parser.set_defaults(func=run)


def _int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an int >= ``minimum``, refused while parsing (before any folder is
    made)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)


def _number(text: str) -> float:
    """``text`` as a float, or the argparse error that names it."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _fraction(text: str) -> float:
    """An argparse type: a number in [0, 1), refused while parsing."""
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _non_negative_float(text: str) -> float:
    """An argparse type: a finite float >= 0, refused while parsing."""
    value = _number(text)
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    """An argparse type: a finite float > 0, refused while parsing (before any folder is made)."""
    value = _number(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def resolve_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Recipe defaults, then the original run's settings when resuming, then explicit flags.

    A resumed run keeps the original settings except ``--epochs``; other settings given with
    ``--resume`` are ignored, with a one-line note on stderr.
    """
    explicit = {
        key: getattr(args, key)
        for key in ("dataset", "data_dir", "model", "epochs", "batch_size", "lr", *COMMON)
        if getattr(args, key) is not None
    }
    if args.resume:
        run_file = Path(args.resume).parent / RUN_FILE
        if not run_file.is_file():
            raise FileNotFoundError(f"cannot resume: {run_file} (the run's settings) not found")
        settings = _read_run_file(run_file)
        ignored = [f"--{key.replace('_', '-')}" for key in explicit if key != "epochs"]
        if args.out is not None:
            ignored.append("--out")
        if args.overwrite:
            ignored.append("--overwrite")  # a resumed run only ever adds to its own folder
        if ignored:
            print(
                f"note: --resume continues with the settings in {run_file}; ignoring "
                f"{', '.join(ignored)} (only --epochs can change)",
                file=sys.stderr,
            )
        settings.update({k: v for k, v in explicit.items() if k == "epochs"})
        return settings
    dataset = args.dataset or "digits"
    settings = {"dataset": dataset, "data_dir": args.data_dir}
    settings.update(COMMON)
    settings.update(RECIPES[dataset])
    settings.update(explicit)
    if settings["model"] is None:
        from glassnet.models import MODELS

        raise ValueError(f"--dataset {dataset} needs --model ({', '.join(MODELS)})")
    return settings


def _read_run_file(run_file: Path) -> dict[str, Any]:
    """The settings an earlier run recorded, with every key ``run`` reads."""
    try:
        settings = json.loads(run_file.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"cannot resume: {run_file} is not valid JSON ({error})") from None
    if not isinstance(settings, dict):
        raise ValueError(
            f"cannot resume: {run_file} holds a {type(settings).__name__}, not a JSON object "
            "of settings"
        )
    settings = {**LATER, **settings}
    missing = [key for key in SETTINGS if key not in settings]
    if missing:
        raise ValueError(f"cannot resume: {run_file} lacks the settings {missing}")
    return settings


def run(args: argparse.Namespace) -> int:
    import numpy as np

    import glassnet as gn
    from glassnet.cli._common import class_scores, parse_shape
    from glassnet.data import border_brightness, get_dataset, train_val_split
    from glassnet.data.augment import preset
    from glassnet.distributed import DataParallel, launched_ranks, limit_blas_threads, node_shared
    from glassnet.distributed.parallel import mark_every_rank
    from glassnet.io.files import atomic_write_text, remove_stale_temporaries, user_cache_dir
    from glassnet.models import WHITENED_STEM, build_model, freeze_whitening_stem
    from glassnet.train import evaluate, fit
    from glassnet.train.checkpoint import check_writable
    from glassnet.train.loop import TrainingDiverged, default_run_dir

    s = resolve_settings(args)
    # Under mpiexec each rank is a process of this command: its BLAS threads are ours to set.
    dp = DataParallel(sync_batchnorm=s["sync_batchnorm"]) if launched_ranks() > 1 else None
    threads = limit_blas_threads(dp) if dp else None
    blas = gn.blas.status()  # a bad GLASSNET_BLAS fails here, before any data or folder
    root = dp is None or dp.is_root
    download = getattr(args, "download", False)
    if download and s["dataset"] not in ("mnist", "fashion-mnist", "cifar10"):
        raise ValueError(f"--download is for mnist, fashion-mnist and cifar10, not {s['dataset']}")
    segmenting = s["dataset"] == segmentation.DATASET
    detecting = s["dataset"] == train_detection.DATASET
    if not segmenting and (s["background_weight"] != 1 or s["dice_weight"] != 0):
        raise ValueError(
            f"--background-weight and --dice-weight are for --dataset {segmentation.DATASET}, "
            f"not {s['dataset']}"
        )
    seeds = np.random.SeedSequence(s["seed"]).spawn(3)

    def load() -> tuple[Any, Any, Any, float]:
        """The train, validation and test sets, and the training images' border brightness."""
        if download:  # here: once per machine under mpiexec, by the rank that reads the files
            from glassnet.data.download import download_dataset

            cache = Path(s["data_dir"] or user_cache_dir()).expanduser()
            s["data_dir"] = str(download_dataset(cache, s["dataset"]))
        if segmenting:
            data, test = segmentation.load_data(s)
        else:
            size = None if s["image_size"] is None else parse_shape(s["image_size"])
            if size is not None and len(size) != 2:
                raise ValueError(f"--image-size takes H,W, got {s['image_size']!r}")
            image_size = None if size is None else (size[0], size[1])
            data, test = (
                get_dataset(
                    s["dataset"], s["data_dir"], split, image_size=image_size,
                    channels=s["channels"], size=s[f"{split}_size"],
                )
                for split in ("train", "test")
            )  # fmt: skip
        train, val = (
            train_val_split(data, s["val_fraction"], np.random.default_rng(seeds[0]))
            if s["val_fraction"]
            else (data, None)
        )
        return train, val, test, border_brightness(data.images)

    # under mpiexec: read once per machine, into memory its ranks share
    train, val, test, background = node_shared(dp, load) if dp else load()
    if segmenting:
        task = gn.Segmentation(segmentation.loss(s, train.num_classes))
        model = segmentation.build_model(s["model"], train, np.random.default_rng(seeds[1]))
    else:
        task = gn.Classification(gn.CrossEntropyLoss(label_smoothing=s["label_smoothing"]))
        model, input_shape = build_model(
            s["model"], train.num_classes, rng=np.random.default_rng(seeds[1])
        )
        if tuple(train.image_shape) != tuple(input_shape):
            raise ValueError(
                f"model {s['model']} expects {input_shape} images, dataset {s['dataset']} has "
                f"{train.image_shape}"
            )
        if detecting:
            if s["augment"] != "none":  # the presets move and flip pixels, not boxes
                raise ValueError(
                    f"--augment {s['augment']} would move the digits but not their boxes"
                )
            task = train_detection.task(model, input_shape)
        else:
            class_scores(model, f"model {s['model']}")  # one score per class and image
        if s["model"] in WHITENED_STEM:  # on resume the checkpoint brings the stem's weight
            freeze_whitening_stem(model, None if args.resume else train.images)

    optimizer = _make_optimizer(gn, model, s)
    schedule = _make_schedule(s, len(train))

    def claim() -> tuple[Path, Path | None]:
        if args.resume:
            out = Path(args.resume).parent
            for name in RUN_FILES:
                remove_stale_temporaries(out / name)
            return out, None
        out = (
            Path(args.out) if args.out else default_run_dir("runs", f"{s['dataset']}-{s['model']}")
        )
        return out, _claim_output_folder(out, args.overwrite)

    def start() -> None:
        check_writable(out, needed_bytes=4 * model.num_parameters() * 4 + 2**20)
        atomic_write_text(out / RUN_FILE, json.dumps(s, indent=2))
        print(
            f"training {s['model']} ({model.num_parameters():,} parameters) on {s['dataset']}: "
            f"{len(train)} train, {len(val) if val else 0} validation, {len(test)} test images; "
            f"output in {out}"
        )
        print(f"BLAS: {blas}")
        if dp:
            print(f"data-parallel: {dp.size} MPI ranks, {threads}")

    # rank 0 alone touches the output folder; every rank gets its outcome, or its error
    out, created = dp.on_root(claim) if dp else claim()
    checkpoint = out / CHECKPOINT
    try:
        dp.on_root(start) if dp else start()
        history = fit(
            model,
            train,
            optimizer,
            epochs=s["epochs"],
            batch_size=s["batch_size"],
            task=task,
            validation=val,
            schedule=schedule,
            augment=preset(s["augment"]),
            ema=s["ema"],
            tta=s["tta"],
            early_stopping=s["early_stopping"],
            checkpoint=checkpoint,
            resume=args.resume,
            rng=np.random.default_rng(seeds[2]),
            progress=not args.no_progress,
            distributed=dp if dp else False,
            accumulate=s["accumulate"],
        )
    except BaseException as error:
        if not root:  # rank 0 reports it, and cleans up
            if isinstance(error, TrainingDiverged):  # all stopped at the same step
                mark_every_rank(error)
            raise
        started = args.resume or checkpoint.exists()
        if not started:
            _discard_unstarted_run(out, created)
        if isinstance(error, KeyboardInterrupt):
            hint = (
                f"resume with: glassnet train --resume {checkpoint}"
                if started
                else f"no epoch had finished, so {out} was removed"
            )
            print(f"glassnet: interrupted; {hint}", file=sys.stderr)
            return 130
        if isinstance(error, TrainingDiverged):
            print(f"glassnet: error: {error}", file=sys.stderr)
            return 1
        raise
    if not root:
        return 0  # rank 0 saves, evaluates and reports

    # the input shape is in the architecture (Sequential's input_shape, a Model's Input);
    # the background brightness lets predict notice pictures of the opposite polarity
    metadata = {
        "classes": json.dumps(train.classes),
        "dataset": s["dataset"],
        "background": f"{background:.4f}",
        "task": task.name,
    }
    gn.save(model, out / "model.safetensors", metadata=metadata)
    atomic_write_text(out / "history.json", json.dumps(history, indent=2))
    if segmenting:
        result = evaluate(model, test, segmentation.EVAL_BATCH, tta=s["tta"], task=task)
        metrics = segmentation.metrics(result)
    else:
        # a classifier is evaluated with plain cross-entropy, comparable across runs
        result = evaluate(model, test, tta=s["tta"], task=task if detecting else None)
        metrics = {"test_loss": result.loss, **{f"test_{k}": v for k, v in result.metrics.items()}}
        if detecting:
            metrics.update(train_detection.metrics(result))
        else:
            metrics.update(
                classes=result.classes,
                precision=result.precision.tolist(),
                recall=result.recall.tolist(),
                confusion_matrix=result.confusion.tolist(),
            )
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    print(f"saved model, history and metrics in {out}")
    if not args.no_plots:
        _plot(model, history, result, out, test, task)
    name, value = result.headline
    print(f"test {name}: {value:.4f}")
    return 0


def _claim_output_folder(out: Path, overwrite: bool) -> Path | None:
    """Refuse to write a run into a folder that holds anything, unless ``overwrite``.

    With ``overwrite`` the earlier run's files (``RUN_FILES``) are removed, so none of them
    can be mistaken for the new run's; other files are left alone.

    Returns:
        The topmost folder this run will create (``out`` or one of its parents), or None when
        ``out`` exists: what ``_discard_unstarted_run`` may remove.

    Raises:
        ValueError: ``out`` is a file, or a non-empty folder without ``overwrite``.
    """
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    if not out.exists():
        created = out
        while not created.parent.exists():
            created = created.parent
        return created
    entries = sorted(entry.name for entry in out.iterdir())
    if entries and not overwrite:
        shown = ", ".join(entries[:4]) + (", ..." if len(entries) > 4 else "")
        raise ValueError(
            f"output folder {out} already exists and is not empty ({shown}); pass --overwrite "
            f"to replace the run in it, --resume {out / CHECKPOINT} to continue it, or "
            "choose another --out"
        )
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    return None


def _discard_unstarted_run(out: Path, created: Path | None) -> None:
    """Remove what a run that ended before its first checkpoint wrote, and the folders it made.

    Nothing of it can be resumed, and a folder holding a ``run.json`` but no model would
    look like a run.
    """
    from glassnet.io.files import remove_stale_temporaries

    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
        remove_stale_temporaries(out / name)
    if created is None:
        return
    for folder in (out, *out.parents):
        try:
            folder.rmdir()  # only if empty: never another program's files
        except OSError:
            return
        if folder == created:
            return


def _make_optimizer(gn: Any, model: Any, s: dict[str, Any]) -> Any:
    decay = {
        "weight_decay": s["weight_decay"],
        "no_decay": () if s["decay_norm_bias"] else gn.optim.norm_and_bias(model),
    }
    params = model.parameters()
    if s["optimizer"] == "sgd":
        return gn.SGD(params, lr=s["lr"], momentum=s["momentum"], nesterov=s["nesterov"], **decay)
    if s["optimizer"] == "adamw":
        return gn.AdamW(params, lr=s["lr"], **decay)
    return gn.Adam(params, lr=s["lr"], **decay)


def _make_schedule(s: dict[str, Any], train_size: int) -> Any:
    """The run's learning-rate schedule; a per-step one spans every step of every epoch."""
    from glassnet.data.batching import num_batches
    from glassnet.train import make_schedule

    if s["schedule"] == "cosine":
        return make_schedule("cosine", epochs=s["epochs"])
    if s["schedule"] == "triangular":
        steps = s["epochs"] * num_batches(train_size, s["batch_size"])
        return make_schedule("triangular", total_steps=steps)
    return make_schedule(s["schedule"])


def _plot(model: Any, history: dict, result: Any, out: Path, test: Any, task: Any) -> None:
    """Training curves, learned filters and the confusion matrix as PNGs, if matplotlib is here;
    for digit scenes, example test predictions (masks or boxes) instead of the confusion
    matrix."""
    try:
        from glassnet import viz

        curves, filters, confusion = (out / name for name in PLOTS)
        written = [viz.plot_history(history, curves), viz.plot_filters(model, filters)]
        if task.name == "segmentation":
            written.append(segmentation.plot_examples(model, test, out / segmentation.EXAMPLES))
        elif task.name == "detection":
            written.append(train_detection.plot_examples(model, test, task, out))
        else:
            written.append(viz.plot_confusion_matrix(result.confusion, result.classes, confusion))
    except ImportError as error:
        print(f"(no pictures: {error})")
        return
    print("wrote " + ", ".join(str(path) for path in written))
