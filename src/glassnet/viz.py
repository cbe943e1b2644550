"""Pictures of what a network computes: filters, feature maps, training curves, confusions.

Each function draws one PNG file and returns its path. matplotlib is imported only when a
picture is drawn, and only its non-interactive Agg canvas is used (no window, no pyplot
state), so these work on servers and inside training runs.

Sizes are fixed in pixels (at ``DPI`` = 100) so that pictures from different runs line up:

=========================  =================================================================
``plot_history``           500 px wide per panel (loss, accuracy, learning rate if it
                           changed), 400 px tall
``plot_confusion_matrix``  640 x 560 px up to 10 classes, larger beyond
``plot_filters``           800 px wide, one row per Conv2d or ConvTranspose2d layer
``plot_feature_maps``      800 px wide, one row for the input and one per call of such a
                           layer
``plot_edges``             1600 x 460 px: the input and its three edge maps
``plot_segmentation``      1000 x 520 px: an image and its class mask overlaid, a legend
``plot_segmentation_       150 px per scene (up to 8) by 520 px: image, true and predicted
examples``                 masks of example scenes
``plot_detections``        240 x 260 px per image: its boxes with class and score
=========================  =================================================================

Colours: signed numbers (weights, feature maps) use a diverging map centred on 0, red for
positive and blue for negative, with a colour bar; images are grey. Masks tint each pixel
of a class other than 0 (the background) with that class's colour (``mask_colours``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from glassnet.nn.container import Sequential
from glassnet.nn.layers import Conv2d
from glassnet.nn.model import Model
from glassnet.nn.upsampling import ConvTranspose2d

DPI = 100
#: At most this many filters (output channels) and input channels are drawn per layer.
MAX_FILTERS, MAX_INPUT_CHANNELS = 32, 16
#: Feature maps are laid out in rows of this many channels (at most MAX_FILTERS in all).
MAP_COLUMNS = 8
SIGNED_CMAP = "RdBu_r"
#: How strongly a class colour covers the image in mask overlays (0: not at all, 1: fully).
MASK_ALPHA = 0.6
#: Example grids show at most this many scenes.
MAX_EXAMPLES = 8


def _figure(width_px: int, height_px: int) -> Any:
    """A matplotlib Figure on an Agg canvas, ``width_px`` x ``height_px`` once saved."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            "glassnet.viz draws with matplotlib, which is not installed: pip install matplotlib"
        ) from error
    fig = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    return path


def _signed_cmap() -> Any:
    import matplotlib

    return matplotlib.colormaps[SIGNED_CMAP].with_extremes(bad="white")


def _mosaic(tiles: np.ndarray, columns: int) -> np.ndarray:
    """Tiles (n, h, w) laid out ``columns`` to a row, one NaN pixel (drawn white) between.

    Shape: returns (rows * (h + 1) - 1, columns * (w + 1) - 1).
    """
    n, h, w = tiles.shape
    rows = math.ceil(n / columns)
    out = np.full((rows * (h + 1) - 1, columns * (w + 1) - 1), np.nan)
    for t in range(n):
        r, c = divmod(t, columns)
        out[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = tiles[t]
    return out


def _show_signed(fig: Any, ax: Any, image: np.ndarray, label: str = "") -> None:
    """Draw a signed array centred on 0 with a colour bar."""
    limit = float(np.nanmax(np.abs(image))) if np.isfinite(image).any() else 1.0
    limit = limit or 1.0
    shown = ax.imshow(image, cmap=_signed_cmap(), vmin=-limit, vmax=limit, interpolation="nearest")
    fig.colorbar(shown, ax=ax, shrink=0.9, label=label)


def _row_heights(shapes: Sequence[tuple[int, int]], width_px: int) -> list[int]:
    """Pixel height of each picture row, from its array's aspect ratio (within 160-500 px)."""
    return [int(min(500, max(160, 60 + (width_px - 160) * h / w))) for h, w in shapes]


def _conv_layers(model: Sequential | Model) -> list[tuple[str, Conv2d | ConvTranspose2d]]:
    """Each Conv2d and ConvTranspose2d layer, labelled ``"3 Conv2d"`` or ``"conv1 Conv2d"``."""
    from glassnet.explain.model import layer_names

    names = layer_names(model)
    layers = [
        (f"{name} {type(lay).__name__}", lay)
        for name, lay in zip(names, model.layers, strict=True)
        if isinstance(lay, Conv2d | ConvTranspose2d)
    ]
    if not layers:
        raise ValueError("this model has no Conv2d or ConvTranspose2d layer to draw")
    return layers


def _kernel_grid(lay: Conv2d | ConvTranspose2d) -> tuple[np.ndarray, int, str]:
    """A layer's kernels as tiles: the grid, its number of rows of kernels, and its title.

    Conv2d: column o is filter (output channel) o, row c its kernel for input channel c of
    its group, ``W[o, c]``. ConvTranspose2d: column i is input channel i, row o the kernel it
    spreads onto output channel o of its group, ``W[i, o]``.
    """
    w = lay.weight.value  # Conv2d (C_out, C_in / G, KH, KW); transposed (C_in, C_out / G, ...)
    cols, rows, KH, KW = w.shape
    shown = w[:MAX_FILTERS, :MAX_INPUT_CHANNELS]
    o, c = shown.shape[:2]
    tiles = shown.transpose(1, 0, 2, 3).reshape(o * c, KH, KW)  # row c, column o
    # One row of kernels: wrap them, MAP_COLUMNS to a row, so they are drawn larger.
    grid = _mosaic(tiles.astype(np.float64), o if c > 1 else min(o, MAP_COLUMNS))
    transposed = isinstance(lay, ConvTranspose2d)
    what = ("input channels", "output channels") if transposed else ("filters", "channels")
    cut = ", ".join(
        f"{n} {name}" for n, total, name in ((o, cols, what[0]), (c, rows, what[1])) if n < total
    )
    cut = f" (first {cut} shown)" if cut else ""
    plural = "s" if rows > 1 else ""
    groups = f" of its group ({lay.groups} groups)" if lay.groups > 1 else ""
    if transposed:
        title = (
            f"{lay.in_channels} input channels (columns), each spreading {KH}x{KW} kernels onto "
            f"{rows} output channel{plural}{groups}{cut}"
        )
    else:
        title = f"{cols} filters of {KH}x{KW}, each over {rows} input channel{plural}{groups}{cut}"
    return grid, c, title


def plot_filters(model: Sequential | Model, path: str | Path) -> Path:
    """Draw the learned kernels of every Conv2d and ConvTranspose2d layer, one grid per layer.

    In a Conv2d's grid, column o is filter (output channel) o and row c its kernel for input
    channel c: ``W[o, c]``, (KH, KW) pixels each; with G groups the rows are the C_in / G
    input channels of the filter's group. In a ConvTranspose2d's grid, column i is input
    channel i and row o the kernel ``W[i, o]`` that it spreads onto output channel o (of its
    group). Colours are centred on 0 (red positive, blue negative), one scale per layer. At
    most 32 columns and 16 rows are drawn per layer; the title says when some are left out.

    Args:
        model: a Sequential or a Model with at least one Conv2d or ConvTranspose2d.
        path: the PNG file to write (folders are created).

    Returns:
        The path written.

    Raises:
        ValueError: the model has no Conv2d or ConvTranspose2d layer.
        ImportError: matplotlib is not installed.

    Example:
        >>> import tempfile, glassnet as gn
        >>> model = gn.Sequential([gn.Conv2d(1, 6, 5, rng=0)])
        >>> plot_filters(model, Path(tempfile.mkdtemp()) / "filters.png").name
        'filters.png'
    """
    layers = _conv_layers(model)
    drawn = [_kernel_grid(lay) for _, lay in layers]
    heights = _row_heights([grid.shape for grid, _, _ in drawn], 800)
    fig = _figure(800, sum(heights) + 40)
    fig.suptitle(
        "Learned filters: filter o in column o, its kernel for input channel c in row c\n"
        "(one row of kernels: wrapped in reading order, row label = first kernel of the row)",
        fontsize=10,
    )
    axes = fig.subplots(len(drawn), 1, squeeze=False, height_ratios=heights)[:, 0]
    for ax, (grid, kernel_rows, title), (label, lay) in zip(axes, drawn, layers, strict=True):
        _show_signed(fig, ax, grid, "weight")
        ax.set_title(f"{label}\n{title}", fontsize=9)
        KH, KW = lay.kernel_size
        columns = (grid.shape[1] + 1) // (KW + 1)
        rows = (grid.shape[0] + 1) // (KH + 1)
        ax.set_xticks([c * (KW + 1) + (KW - 1) / 2 for c in range(columns)], range(columns))
        row_labels = [f"{r * columns}+" for r in range(rows)] if kernel_rows == 1 else range(rows)
        ax.set_yticks([r * (KH + 1) + (KH - 1) / 2 for r in range(rows)], row_labels)
        ax.tick_params(labelsize=7 if columns > 16 else 9, length=0)
    return _save(fig, path)


def plot_feature_maps(model: Sequential | Model, image: np.ndarray, path: str | Path) -> Path:
    """Draw one image and what every Conv2d and ConvTranspose2d layer makes of it.

    The first row is the input (each channel in grey, or the colour image for 3 channels);
    then one grid per call of such a layer of its output channels (before the activation
    that follows), eight to a row, at most 32, coloured around 0 with one scale per layer.

    Args:
        model: a Sequential or a Model with at least one Conv2d or ConvTranspose2d.
        image: one image (H, W, C) or (1, H, W, C), scaled as in training (floats in [0, 1]
            for glassnet's datasets).
        path: the PNG file to write.

    Returns:
        The path written.

    Example:
        >>> import tempfile, glassnet as gn
        >>> model = gn.Sequential([gn.Conv2d(1, 4, 3, rng=0)])
        >>> out = Path(tempfile.mkdtemp()) / "maps.png"
        >>> plot_feature_maps(model, np.zeros((8, 8, 1), np.float32), out).name
        'maps.png'
    """
    from glassnet.explain.model import layer_calls

    _conv_layers(model)
    maps = [
        (call.label, call.output[0])  # (H_out, W_out, C_out)
        for call in layer_calls(model, image)
        if isinstance(model.layers[call.index], Conv2d | ConvTranspose2d)
    ]
    H, W, C = np.shape(image)[-3:]
    x = np.asarray(image).reshape(H, W, C)
    rows = []  # (title, array, signed)
    if C == 3:
        rows.append((f"input image {H}x{W}x3", np.clip(x, 0, 1), False))
    else:
        tiles = x.transpose(2, 0, 1)  # (C, H, W)
        rows.append(
            (
                f"input image {H}x{W}x{C}",
                _mosaic(tiles, len(tiles)),
                False,
            )
        )
    for label, out in maps:
        H, W, C = out.shape
        shown = min(C, MAX_FILTERS)
        tiles = out[:, :, :shown].transpose(2, 0, 1).astype(np.float64)  # (shown, H, W)
        cut = f", first {shown} shown" if shown < C else ""
        rows.append(
            (f"{label} output: {C} feature maps of {H}x{W}{cut}",
             _mosaic(tiles, min(shown, MAP_COLUMNS)), True)
        )  # fmt: skip
    heights = _row_heights([r[1].shape[:2] for r in rows], 800)
    heights[0] = min(heights[0], 220)  # the input is the reference, not the subject
    fig = _figure(800, sum(heights) + 40)
    fig.suptitle("Feature maps of one image (red positive, blue negative)")
    axes = fig.subplots(len(rows), 1, squeeze=False, height_ratios=heights)[:, 0]
    for ax, (title, array, signed) in zip(axes, rows, strict=True):
        if signed:
            _show_signed(fig, ax, array, "activation")
        else:
            cmap = None if array.ndim == 3 else _grey_cmap()
            ax.imshow(array, cmap=cmap, vmin=0, vmax=max(1.0, float(np.nanmax(array))))
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    return _save(fig, path)


def _grey_cmap() -> Any:
    import matplotlib

    return matplotlib.colormaps["gray"].with_extremes(bad="white")


#: What ``fit``'s history records beside the loss and the task's scores.
_NOT_SCORES = ("epoch", "loss", "val_loss", "lr", "seconds")


def plot_history(history: Mapping[str, Sequence[float]], path: str | Path) -> Path:
    """Draw training curves: the loss and each score per epoch, training and validation.

    Args:
        history: ``{"epoch": [...], "loss": [...], "accuracy": [...], "val_loss": [...],
            "val_accuracy": [...], "lr": [...]}`` as ``fit`` returns it; only ``loss`` is
            required. Every other list but ``epoch``, ``lr`` and ``seconds`` is a score with
            a panel of its own (``pixel_accuracy`` and ``val_mIoU`` for segmentation,
            ``val_mAP@0.5`` for detection), its ``val_*`` curve dashed; a learning-rate
            panel is added when ``lr`` changes.
        path: the PNG file to write: 500 px wide per panel, 400 px tall.

    Returns:
        The path written.

    Raises:
        ValueError: no ``loss``, or lists of different lengths.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp()) / "curves.png"
        >>> plot_history({"loss": [1.0, 0.5], "accuracy": [0.6, 0.8]}, out).name
        'curves.png'
    """
    if "loss" not in history or len(history["loss"]) == 0:
        raise ValueError(f"history needs a non-empty 'loss' list, got keys {sorted(history)}")
    n = len(history["loss"])
    wrong = {k: len(v) for k, v in history.items() if len(v) != n}
    if wrong:
        raise ValueError(f"history lists must all have {n} entries (one per epoch), got {wrong}")
    epochs = list(history.get("epoch", range(1, n + 1)))
    scores = [k.removeprefix("val_") for k in history if k not in _NOT_SCORES]
    panels = [("loss", "loss")] + [(k, k.replace("_", " ")) for k in dict.fromkeys(scores)]
    if "lr" in history and len(set(history["lr"])) > 1:
        panels.append(("lr", "learning rate"))
    fig = _figure(500 * len(panels), 400)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    marker = "o" if n <= 30 else None
    for ax, (key, name) in zip(axes, panels, strict=True):
        if key == "lr":
            ax.plot(epochs, history["lr"], color="tab:gray", marker=marker)
        else:
            if key in history:
                last = history[key][-1]
                ax.plot(epochs, history[key], marker=marker, label=f"training ({last:.4g})")
            if f"val_{key}" in history:
                last = history[f"val_{key}"][-1]
                ax.plot(epochs, history[f"val_{key}"], "--", marker=marker,
                        label=f"validation ({last:.4g})")  # fmt: skip
            ax.legend(title="last epoch")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"Training over {n} epoch{'s' if n > 1 else ''}")
    return _save(fig, path)


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], path: str | Path) -> Path:
    """Draw a confusion matrix: row t, column p counts images of class t predicted as p.

    The diagonal holds the correct predictions. Cells are coloured by the share of their row
    (so a rare class's mistakes show as clearly as a common one's) and labelled with counts
    (up to 20 classes). 640 x 560 px up to 10 classes, 48 px more per extra class.

    Args:
        matrix: (K, K) counts, e.g. ``gn.train.confusion_matrix(labels, predicted, K)``.
        class_names: K names.
        path: the PNG file to write.

    Returns:
        The path written.

    Raises:
        ValueError: a matrix that is not square or names of the wrong number.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp()) / "confusion.png"
        >>> plot_confusion_matrix(np.array([[5, 1], [0, 4]]), ["cat", "dog"], out).name
        'confusion.png'
    """
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"the confusion matrix must be square (K, K), got shape {m.shape}")
    K = m.shape[0]
    if len(class_names) != K:
        raise ValueError(f"expected {K} class names for a {K}x{K} matrix, got {len(class_names)}")
    extra = max(0, K - 10) * 48
    fig = _figure(640 + extra, 560 + extra)
    ax = fig.subplots()
    totals = m.sum(axis=1, keepdims=True)
    share = np.divide(m, totals, out=np.zeros(m.shape), where=totals > 0)
    shown = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(shown, ax=ax, label="share of the true class")
    if K <= 20:
        for t in range(K):
            for p in range(K):
                colour = "white" if share[t, p] > 0.5 else "black"
                ax.text(p, t, str(int(m[t, p])), ha="center", va="center", color=colour,
                        fontsize=9 if K <= 12 else 7)  # fmt: skip
    names = [str(c) for c in class_names]
    ax.set_xticks(range(K), names, rotation=45 if max(map(len, names)) > 3 else 0, ha="right"
                  if max(map(len, names)) > 3 else "center")  # fmt: skip
    ax.set_yticks(range(K), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    total = int(m.sum())
    accuracy = np.trace(m) / total if total else 0.0
    ax.set_title(f"Confusion matrix: {total} images, accuracy {accuracy:.2%}")
    return _save(fig, path)


def mask_colours(num_classes: int) -> np.ndarray:
    """One RGB colour in [0, 1] per class of a mask: class 0 (background) black, then
    matplotlib's ``tab10`` (``tab20`` beyond 11 classes), shape ``(num_classes, 3)``.

    Example:
        >>> mask_colours(11).shape, mask_colours(11)[0].tolist()
        ((11, 3), [0.0, 0.0, 0.0])
    """
    import matplotlib

    palette = matplotlib.colormaps["tab10" if num_classes <= 11 else "tab20"]
    colours = [palette(k % palette.N)[:3] for k in range(num_classes - 1)]
    return np.array([(0.0, 0.0, 0.0), *colours]).reshape(num_classes, 3)


def overlay_mask(image: np.ndarray, mask: np.ndarray, num_classes: int) -> np.ndarray:
    """An image with each non-background pixel tinted by its class's colour.

    Math:
        rgb = image (grey repeated to 3 channels), in [0, 1]
        rgb[p] = (1 - ALPHA) rgb[p] + ALPHA colour[mask[p]]   where mask[p] != 0

    Shape:
        image: (H, W, C) floats in [0, 1], C = 1 or 3; mask: (H, W) ints in [0, num_classes);
        out: (H, W, 3).

    Example:
        >>> overlay_mask(np.ones((2, 2, 1)), np.array([[0, 1], [0, 0]]), 11)[0, 0].tolist()
        [1.0, 1.0, 1.0]
    """
    rgb = np.broadcast_to(image, (*image.shape[:2], 3)).astype(np.float64)  # (H, W, 3)
    colours = mask_colours(num_classes)[mask]  # (H, W, 3)
    tinted = (1 - MASK_ALPHA) * rgb + MASK_ALPHA * colours
    return np.where((mask != 0)[..., None], tinted, rgb)


def _legend(fig: Any, class_names: Sequence[str], present: np.ndarray) -> None:
    from matplotlib.patches import Patch

    colours = mask_colours(len(class_names))
    handles = [
        Patch(color=colours[k], label=str(class_names[k]))
        for k in range(1, len(class_names))
        if present[k]
    ]
    if handles:
        fig.legend(handles=handles, loc="outside right center", title="class")


def _check_masks(
    images: np.ndarray, masks: Sequence[np.ndarray], class_names: Sequence[str]
) -> None:
    """Each mask has the images' shape without channels and holds classes of ``class_names``."""
    for mask in masks:
        if mask.shape != images.shape[:-1]:
            raise ValueError(
                f"a mask must have the shape of its image(s) without channels "
                f"{images.shape[:-1]}, got {mask.shape}"
            )
        if mask.size and (mask.min() < 0 or mask.max() >= len(class_names)):
            raise ValueError(
                f"mask values must be classes in [0, {len(class_names)}) for "
                f"{len(class_names)} class names, got values from {mask.min()} to {mask.max()}"
            )


def plot_segmentation(
    image: np.ndarray,
    mask: np.ndarray,
    class_names: Sequence[str],
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Draw an image beside the same image with its mask overlaid in colours, and a legend.

    Background (class 0) is left uncoloured; the legend lists the classes that occur.
    1000 x 520 px.

    Args:
        image: (H, W, C) floats in [0, 1], C = 1 or 3.
        mask: (H, W) class indices, e.g. ``predict``'s argmax for a segmentation model.
        class_names: one name per class, the background first.
        path: the PNG file to write.
        title: a title above both panels (default: the share of pixels per drawn class).

    Returns:
        The path written.

    Raises:
        ValueError: a mask not of the image's size or with values outside the classes.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp()) / "mask.png"
        >>> mask = np.zeros((8, 8), np.int64); mask[2:5, 3:6] = 2
        >>> plot_segmentation(np.zeros((8, 8, 1)), mask, ["bg", "a", "b"], out).name
        'mask.png'
    """
    _check_masks(image, [mask], class_names)
    fig = _figure(1000, 520)
    left, right = fig.subplots(1, 2)
    left.imshow(np.broadcast_to(image, (*image.shape[:2], 3)), interpolation="nearest")
    left.set_title("image")
    right.imshow(overlay_mask(image, mask, len(class_names)), interpolation="nearest")
    right.set_title("classes")
    for ax in (left, right):
        ax.set_axis_off()
    counts = np.bincount(mask.ravel(), minlength=len(class_names))
    _legend(fig, class_names, counts > 0)
    if title is None:
        drawn = [f"{class_names[k]} {counts[k] / mask.size:.1%}" for k in np.nonzero(counts)[0]]
        title = "pixels: " + ", ".join(drawn)
    fig.suptitle(title)
    return _save(fig, path)


def plot_segmentation_examples(
    images: np.ndarray,
    truth: np.ndarray,
    predicted: np.ndarray,
    class_names: Sequence[str],
    path: str | Path,
) -> Path:
    """Draw example scenes in columns: the image, the true mask and the predicted mask.

    Each prediction is titled with its pixel accuracy; the legend lists every class shown.
    Up to ``MAX_EXAMPLES`` scenes, 150 px per column, 3 rows.

    Args:
        images: (N, H, W, C) floats in [0, 1].
        truth, predicted: (N, H, W) class indices.
        class_names: one name per class, the background first.
        path: the PNG file to write.

    Returns:
        The path written.

    Raises:
        ValueError: masks of another shape, or values outside the classes.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp()) / "examples.png"
        >>> masks = np.zeros((2, 8, 8), np.int64)
        >>> plot_segmentation_examples(np.zeros((2, 8, 8, 1)), masks, masks, ["bg", "a"], out).name
        'examples.png'
    """
    n = min(len(images), MAX_EXAMPLES)
    images, truth, predicted = images[:n], truth[:n], predicted[:n]
    _check_masks(images, [truth, predicted], class_names)
    K = len(class_names)
    fig = _figure(150 * n + 120, 3 * 160 + 40)
    axes = fig.subplots(3, n, squeeze=False)
    for i in range(n):
        right = float(np.mean(truth[i] == predicted[i]))
        panels = (
            (np.broadcast_to(images[i], (*images.shape[1:3], 3)), "image"),
            (overlay_mask(images[i], truth[i], K), "truth"),
            (overlay_mask(images[i], predicted[i], K), f"predicted {right:.1%}"),
        )
        for ax, (picture, label) in zip(axes[:, i], panels, strict=True):
            ax.imshow(picture, interpolation="nearest")
            ax.set_title(label, fontsize=8)
            ax.set_axis_off()
    present = np.bincount(np.concatenate([truth.ravel(), predicted.ravel()]), minlength=K)
    _legend(fig, class_names, present > 0)
    fig.suptitle(f"{n} test scenes: truth and prediction (share of pixels right)")
    return _save(fig, path)


def plot_detections(
    images: np.ndarray,
    detections: Sequence[Any],
    class_names: Sequence[str],
    path: str | Path,
    truth: np.ndarray | None = None,
    columns: int = 4,
) -> Path:
    """Draw images with their detected boxes, each labelled with its class and score.

    Detections are solid boxes with a label ``class score`` above them; ground-truth boxes,
    when given, are dashed white boxes under them. Panels of 240 x 260 px, ``columns`` to a
    row.

    Args:
        images: (N, H, W, C) uint8 or floats in [0, 1]; C 1 or 3.
        detections: one ``glassnet.detection.Detections`` per image (boxes in pixels).
        class_names: the name of each class index.
        path: the PNG file to write.
        truth: (N, M, 5) ground truth, rows (x0, y0, x1, y1, class), class -1 for padding.
        columns: panels per row.

    Returns:
        The path written.

    Raises:
        ValueError: not one ``Detections`` (and one truth row block) per image.

    Example:
        >>> import tempfile
        >>> from glassnet.detection import Detections
        >>> found = [Detections(np.array([[2.0, 2, 10, 12]]), np.array([0.9]), np.array([1]))]
        >>> out = Path(tempfile.mkdtemp()) / "boxes.png"
        >>> plot_detections(np.zeros((1, 16, 16, 1)), found, ["a", "b"], out).name
        'boxes.png'
    """
    from matplotlib.patches import Rectangle

    images = np.asarray(images)
    if len(detections) != len(images) or (truth is not None and len(truth) != len(images)):
        raise ValueError(
            f"plot_detections expects one Detections (and one set of truth boxes) per image: "
            f"{len(images)} images, {len(detections)} detections"
            + ("" if truth is None else f", {len(truth)} truths")
        )
    N = len(images)
    columns = max(1, min(columns, N))
    rows = math.ceil(N / columns)
    fig = _figure(240 * columns, 260 * rows)
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    colours = _class_colours(len(class_names))
    for n, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if n >= N:
            ax.axis("off")
            continue
        image = images[n]
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray",
                  vmin=0, vmax=255 if image.dtype == np.uint8 else 1,
                  interpolation="nearest")  # fmt: skip
        for x0, y0, x1, y1, _k in [] if truth is None else truth[n][truth[n][:, 4] >= 0]:
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                                   edgecolor="white", linestyle="--", linewidth=1))  # fmt: skip
        found = detections[n]
        for (x0, y0, x1, y1), score, k in zip(
            found.boxes, found.scores, found.classes, strict=True
        ):
            colour = colours[int(k)]
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                                   edgecolor=colour, linewidth=1.5))  # fmt: skip
            ax.text(x0 - 0.5, y0 - 1, f"{class_names[int(k)]} {score:.2f}", color="black",
                    fontsize=8, va="bottom",
                    bbox={"facecolor": colour, "edgecolor": "none", "pad": 1})  # fmt: skip
        ax.set_title(f"{len(found.boxes)} found" + ("" if truth is None else
                     f", {int((truth[n][:, 4] >= 0).sum())} true"), fontsize=9)  # fmt: skip
    return _save(fig, path)


def _class_colours(count: int) -> list[Any]:
    """``count`` distinct colours (matplotlib's tab10, then tab20)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if count <= 10 else "tab20"]
    return [cmap(k % cmap.N) for k in range(count)]


def plot_edges(image: np.ndarray | None, path: str | Path) -> Path:
    """Draw an image and its vertical, horizontal and diagonal edge maps side by side.

    The maps are ``glassnet.explain.edges(image)``: each kernel (shown in its panel's title)
    slid over the image with padding 1. One colour scale for the three maps, centred on 0:
    red where the kernel's positive side is brighter, blue where its negative side is.

    Args:
        image: (H, W) greyscale; None for the built-in ``sample_image("house")``.
        path: the PNG file to write, 1600 x 460 px.

    Returns:
        The path written.

    Example:
        >>> import tempfile
        >>> plot_edges(None, Path(tempfile.mkdtemp()) / "edges.png").name
        'edges.png'
    """
    from glassnet.explain import KERNELS, edges

    maps = edges(image)
    limit = max(float(np.abs(maps[name]).max()) for name in KERNELS if name in maps) or 1.0
    fig = _figure(1600, 460)
    axes = fig.subplots(1, 4)
    axes[0].imshow(maps["input"], cmap="gray", interpolation="nearest")
    axes[0].set_title(f"input {maps['input'].shape[0]}x{maps['input'].shape[1]}")
    shown = None
    for ax, name in zip(axes[1:], ("vertical", "horizontal", "diagonal"), strict=True):
        kernel = "\n".join(" ".join(f"{int(v):>2}" for v in row) for row in KERNELS[name])
        shown = ax.imshow(maps[name], cmap=SIGNED_CMAP, vmin=-limit, vmax=limit,
                          interpolation="nearest")  # fmt: skip
        ax.set_title(f"{name} edges", fontsize=11)
        ax.text(0.03, 0.97, f"kernel\n{kernel}", transform=ax.transAxes, ha="left", va="top",
                family="monospace", fontsize=8,
                bbox={"facecolor": "white", "edgecolor": "0.6"})  # fmt: skip
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(shown, ax=list(axes[1:]), shrink=0.8, label="kernel response")
    return _save(fig, path)


__all__ = [
    "DPI",
    "plot_confusion_matrix",
    "plot_detections",
    "plot_edges",
    "plot_feature_maps",
    "plot_filters",
    "plot_history",
]
