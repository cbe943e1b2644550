"""Named architectures: ``build_model("lenet5")`` and friends.

Each entry gives the model and the one-sample input shape ``(H, W, C)`` it expects.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from glassnet import nn
from glassnet.data.dataset import model_input
from glassnet.init import as_generator, dirac_, patch_whitening_
from glassnet.nn.container import Sequential
from glassnet.nn.graph import Input, SymbolicTensor
from glassnet.nn.layers import Conv2d, Dropout, Flatten, GlobalAvgPool2d, Linear, MaxPool2d, ReLU
from glassnet.nn.merge import Add, Concatenate
from glassnet.nn.model import Model
from glassnet.nn.module import Module


def lenet5(
    num_classes: int = 10, rng: np.random.Generator | int | None = None, dtype: str = "float32"
) -> Sequential:
    """LeNet-5 for 28x28x1 images (LeCun et al. 1998), with ReLU and max pooling.

    conv 5x5 (6, pad 2) -> ReLU -> maxpool 2 -> conv 5x5 (16) -> ReLU -> maxpool 2 -> flatten
    -> linear 400->120 -> ReLU -> linear 120->84 -> ReLU -> linear 84->num_classes.
    61,706 parameters for 10 classes.

    Example:
        >>> lenet5(rng=0).num_parameters()
        61706
    """
    rng = as_generator(rng)
    return Sequential([
        Conv2d(1, 6, 5, padding=2, rng=rng, dtype=dtype), ReLU(), MaxPool2d(2),
        Conv2d(6, 16, 5, rng=rng, dtype=dtype), ReLU(), MaxPool2d(2), Flatten(),
        Linear(400, 120, rng=rng, dtype=dtype), ReLU(),
        Linear(120, 84, rng=rng, dtype=dtype), ReLU(),
        Linear(84, num_classes, rng=rng, dtype=dtype),
    ])  # fmt: skip


def digits_cnn(
    num_classes: int = 10, rng: np.random.Generator | int | None = None, dtype: str = "float32"
) -> Sequential:
    """A small CNN for scikit-learn's 8x8x1 digits.

    conv 3x3 (16, pad 1) -> ReLU -> conv 3x3 (32, pad 1) -> ReLU -> maxpool 2 -> flatten
    -> linear 512->64 -> ReLU -> dropout 0.25 -> linear 64->num_classes.

    Example:
        >>> digits_cnn(rng=0).num_parameters()
        38282
    """
    rng = as_generator(rng)
    return Sequential([
        Conv2d(1, 16, 3, padding=1, rng=rng, dtype=dtype), ReLU(),
        Conv2d(16, 32, 3, padding=1, rng=rng, dtype=dtype), ReLU(), MaxPool2d(2), Flatten(),
        Linear(4 * 4 * 32, 64, rng=rng, dtype=dtype), ReLU(), Dropout(0.25, rng=rng),
        Linear(64, num_classes, rng=rng, dtype=dtype),
    ])  # fmt: skip


def cifar_cnn(
    num_classes: int = 10, rng: np.random.Generator | int | None = None, dtype: str = "float32"
) -> Sequential:
    """A small VGG-style CNN for 32x32x3 images (CIFAR-10).

    [conv 3x3 (32, pad 1) -> ReLU] x2 -> maxpool 2 -> [conv 3x3 (64, pad 1) -> ReLU] x2
    -> maxpool 2 -> flatten -> linear 4096->256 -> ReLU -> linear 256->num_classes.

    Example:
        >>> cifar_cnn(rng=0).num_parameters()
        1116970
    """
    rng = as_generator(rng)
    return Sequential([
        Conv2d(3, 32, 3, padding=1, rng=rng, dtype=dtype), ReLU(),
        Conv2d(32, 32, 3, padding=1, rng=rng, dtype=dtype), ReLU(), MaxPool2d(2),
        Conv2d(32, 64, 3, padding=1, rng=rng, dtype=dtype), ReLU(),
        Conv2d(64, 64, 3, padding=1, rng=rng, dtype=dtype), ReLU(), MaxPool2d(2), Flatten(),
        Linear(8 * 8 * 64, 256, rng=rng, dtype=dtype), ReLU(),
        Linear(256, num_classes, rng=rng, dtype=dtype),
    ])  # fmt: skip


def resnet_cifar(
    num_classes: int = 10, rng: np.random.Generator | int | None = None, dtype: str = "float32"
) -> Model:
    """A small ResNet for 32x32x3 images (CIFAR-10): BatchNorm and three residual stages.

    conv 3x3 (16) -> BN -> ReLU -> stage 16 -> stage 32 (stride 2) -> stage 64 (stride 2)
    -> global average pool -> linear 64->num_classes. Each stage is one basic block (He et
    al. 2016): conv 3x3 -> BN -> ReLU -> conv 3x3 -> BN, added to the block's input (through
    a 1x1 conv and BN where the stride or the width changes), then ReLU. Convolutions followed
    by BN have no bias. The layers carry torchvision's ResNet names (``conv1``, ``bn1``,
    ``layer2.0.conv1``, ``layer2.0.downsample.0``, ``fc``, ...), so the parameters of the
    same network in PyTorch have the same keys.

    Example:
        >>> resnet_cifar(rng=0).num_parameters()
        78042
    """
    rng = as_generator(rng)

    def conv(c_in: int, c_out: int, k: int, stride: int = 1) -> Conv2d:
        return Conv2d(c_in, c_out, k, stride, padding=k // 2, bias=False, rng=rng, dtype=dtype)

    def bn(channels: int) -> Module:
        return nn.BatchNorm2d(channels).astype(dtype)

    def block(x: SymbolicTensor, c_in: int, c_out: int, stride: int, name: str) -> SymbolicTensor:
        h = ReLU()(
            bn(c_out)(conv(c_in, c_out, 3, stride)(x, name=f"{name}.conv1"), name=f"{name}.bn1")
        )
        h = bn(c_out)(conv(c_out, c_out, 3)(h, name=f"{name}.conv2"), name=f"{name}.bn2")
        if stride != 1 or c_in != c_out:
            x = conv(c_in, c_out, 1, stride)(x, name=f"{name}.downsample.0")
            x = bn(c_out)(x, name=f"{name}.downsample.1")
        return ReLU()(Add()([h, x]))

    inputs = Input((32, 32, 3))
    x = ReLU()(bn(16)(conv(3, 16, 3)(inputs, name="conv1"), name="bn1"))
    x = block(x, 16, 16, 1, "layer1.0")
    x = block(x, 16, 32, 2, "layer2.0")
    x = block(x, 32, 64, 2, "layer3.0")
    x = GlobalAvgPool2d()(x)
    return Model(inputs, Linear(64, num_classes, rng=rng, dtype=dtype)(x, name="fc"))


def _unet(
    input_shape: tuple[int, int, int],
    widths: tuple[int, ...],
    num_classes: int,
    rng: np.random.Generator | int | None,
    dtype: str,
    batch_norm: bool = False,
) -> Model:
    """A U-Net with ``len(widths) - 1`` levels: ``widths`` per level, the bottleneck's last.

    Level ``i`` (from 1) is ``[conv 3x3 -> ReLU] x2`` (``[conv 3x3 -> BatchNorm -> ReLU] x2``
    with ``batch_norm``, the convolutions then without bias) at ``widths[i - 1]`` channels, then
    maxpool 2 on the way down; on the way up a transposed conv 2x2 (stride 2) halves the
    channels and doubles the size, the encoder's map of that size is concatenated (the skip),
    and ``[conv 3x3 -> ReLU] x2`` follows; a 1x1 conv ``head`` gives the class scores.
    """
    rng = as_generator(rng)

    def double_conv(x: SymbolicTensor, c_in: int, c_out: int, name: str) -> SymbolicTensor:
        layers: list[Module] = []
        for c in (c_in, c_out):
            layers.append(Conv2d(c, c_out, 3, padding=1, bias=not batch_norm, rng=rng, dtype=dtype))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out).astype(dtype))
            layers.append(ReLU())
        for i, layer in enumerate(layers):  # named as the items of one nn.Sequential
            x = layer(x, name=f"{name}.{i}")
        return x

    inputs = Input(input_shape)
    x, c_in, skips = inputs, input_shape[2], []
    for level, width in enumerate(widths[:-1], start=1):
        skips.append(double_conv(x, c_in, width, f"enc{level}"))
        x, c_in = MaxPool2d(2)(skips[-1]), width
    x = double_conv(x, c_in, widths[-1], "bottleneck")
    for level in range(len(widths) - 1, 0, -1):
        c_in, width = widths[level], widths[level - 1]
        up = nn.ConvTranspose2d(c_in, width, 2, stride=2, rng=rng, dtype=dtype)
        x = Concatenate()([up(x, name=f"up{level}"), skips[level - 1]])
        x = double_conv(x, 2 * width, width, f"dec{level}")
    return Model(inputs, Conv2d(widths[0], num_classes, 1, rng=rng, dtype=dtype)(x, name="head"))


def unet_small(
    num_classes: int = 2, rng: np.random.Generator | int | None = None, dtype: str = "float32"
) -> Model:
    """A small U-Net (Ronneberger et al. 2015) for 32x32x3 images: per-pixel class scores.

    Two encoder levels ([conv 3x3 -> ReLU] x2, then maxpool 2: 16 and 32 channels), a 64-channel
    bottleneck, and two decoder levels, each a transposed conv 2x2 (stride 2) back to the
    finer size, concatenated with the encoder's map of that size (the skip), then [conv 3x3
    -> ReLU] x2; a 1x1 conv gives ``num_classes`` scores per pixel: output (32, 32, classes).
    The layers are named as the attributes of the same network written in PyTorch with one
    ``nn.Sequential(conv, ReLU, conv, ReLU)`` per level: ``enc1.0``, ``enc1.2``, ``enc2.*``,
    ``bottleneck.*``, ``up2`` (transposed conv), ``dec2.*``, ``up1``, ``dec1.*`` and ``head``.

    Example:
        >>> unet_small(rng=0).num_parameters()
        117058
    """
    return _unet((32, 32, 3), (16, 32, 64), num_classes, rng, dtype)


def unet(
    num_classes: int = 11,
    rng: np.random.Generator | int | None = None,
    dtype: str = "float32",
    *,
    input_shape: tuple[int, int, int] = (64, 64, 1),
    widths: tuple[int, ...] = (8, 16, 64, 128),
    batch_norm: bool = True,
) -> Model:
    """A U-Net for 64x64x1 digit scenes: 11 scores per pixel (background and the digits 0-9).

    ``unet-small``'s design one level deeper and with BatchNorm: three encoder levels of
    ``widths`` 8, 16 and 64 channels, each ``[conv 3x3 -> BatchNorm -> ReLU] x2`` then
    maxpool 2, a 128-channel bottleneck at 8x8, three decoder levels back to 64x64 and a 1x1
    ``head``; output (64, 64, num_classes). The full-size levels are narrow (they only need to
    trace the strokes: which pixels are ink), the coarse ones wide (they recognise the digit,
    which every pixel of it depends on); three poolings let a pixel's score see about 90
    pixels across, more than a whole digit (the scenes draw them 16-32 pixels tall). Layer
    names as in ``unet_small``, with the BatchNorm layers in between (``enc1.0`` conv,
    ``enc1.1`` BatchNorm, ``enc1.2`` ReLU, ``enc1.3`` conv, ...).

    Args:
        num_classes: scores per pixel.
        rng, dtype: the weights' generator (or seed) and dtype.
        input_shape: ``(H, W, C)``; H and W divisible by ``2 ** (len(widths) - 1)``.
        widths: the channels of each level, the bottleneck's last.
        batch_norm: BatchNorm after every 3x3 convolution (which then has no bias).

    Example:
        >>> unet(rng=0).num_parameters()
        429379
        >>> unet(rng=0, input_shape=(32, 32, 3), widths=(4, 8), batch_norm=False).num_parameters()
        1767
    """
    return _unet(input_shape, widths, num_classes, rng, dtype, batch_norm)


def detector(
    num_classes: int = 10, rng: np.random.Generator | int | None = None, dtype: str = "float32"
) -> Sequential:
    """A one-stage grid detector (CenterNet style) for 64x64x1 digit scenes.

    Every cell of a 16x16 grid (one cell per 4x4 pixels) gives ``num_classes`` heatmap
    logits (a centre of that class lies in the cell), two centre offsets and two box sizes,
    in cells: output (16, 16, num_classes + 4), read by ``glassnet.detection.decode`` and
    trained with ``CenterNetLoss``. CenterNet rather than YOLO-v1: no anchors and no boxes
    per cell to assign, one object is one peak (several digits of one class are several
    peaks), the loss is three plain terms, and the whole net is convolutional.

    conv 3x3 stride 2 (16) -> BN -> ReLU -> conv 3x3 (32) -> BN -> ReLU -> maxpool 2
    -> 2 x [conv 3x3 (64) -> BN -> ReLU] -> 2 x [conv 3x3 dilation 2 (64) -> BN -> ReLU]
    -> conv 1x1 (num_classes + 4). Each grid cell sees 57x57 pixels, more than the largest
    digit (32 pixels) around its centre. Four 64-wide convolutions on the grid, not three
    48-wide ones: after some 25,000 MNIST scenes seen in training, the narrower net reached
    test mAP@0.5 0.66 and could not fit its training scenes either (0.77 on them), this one
    0.88 (0.90 on them), for twice the work per image. The heatmap biases start at
    log(0.1 / 0.9) = -2.2, CenterNet's prior of 0.1 per cell, so the focal loss does not
    start from half of all cells firing.

    Example:
        >>> model = detector(rng=0)
        >>> model.num_parameters(), model.forward(np.zeros((1, 64, 64, 1), np.float32)).shape
        (135294, (1, 16, 16, 14))
    """
    rng = as_generator(rng)

    def block(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> list[Module]:
        conv = Conv2d(
            c_in,
            c_out,
            3,
            stride=stride,
            padding=dilation,
            dilation=dilation,
            bias=False,
            rng=rng,
            dtype=dtype,
        )
        return [conv, nn.BatchNorm2d(c_out).astype(dtype), ReLU()]

    head = Conv2d(64, num_classes + 4, 1, rng=rng, dtype=dtype)
    head.params["bias"].value[:num_classes] = np.log(0.1 / 0.9)
    return Sequential([
        *block(1, 16, stride=2), *block(16, 32), MaxPool2d(2),
        *block(32, 64), *block(64, 64), *block(64, 64, dilation=2), *block(64, 64, dilation=2),
        head,
    ])  # fmt: skip


def fast_cnn(
    input_shape: tuple[int, int, int],
    widths: tuple[int, int, int],
    num_classes: int = 10,
    rng: np.random.Generator | int | None = None,
    dtype: str = "float32",
) -> Sequential:
    """A three-stage BatchNorm CNN built to train fast (after airbench, Keller Jordan 2024).

    conv 3x3 (widths[0] / 2, pad 1) -> BN -> ReLU, then for each width w of ``widths``:
    conv 3x3 (w, pad 1) -> maxpool 2 -> BN -> ReLU -> conv 3x3 (w, pad 1) -> BN -> ReLU;
    then a max pool over what is left of the image (4x4 for 32x32 inputs, 3x3 for 28x28) ->
    flatten -> linear widths[-1] -> num_classes. Convolutions have no bias (the BatchNorm
    after each supplies the shift). Each stage's first conv runs before its pool, at the
    stage's input size, where the features are richest; the second at a quarter of the cost.
    """
    rng = as_generator(rng)
    H, W, C = input_shape
    stem = widths[0] // 2
    layers: list[Module] = [
        Conv2d(C, stem, 3, padding=1, bias=False, rng=rng, dtype=dtype),
        nn.BatchNorm2d(stem).astype(dtype),
        ReLU(),
    ]
    return Sequential(layers + _fast_stages((H, W, stem), widths, num_classes, rng, dtype))


def _fast_stages(
    input_shape: tuple[int, int, int],
    widths: tuple[int, ...],
    num_classes: int,
    rng: np.random.Generator,
    dtype: str,
    identity_init: bool = False,
) -> list[Module]:
    """``fast_cnn``'s stages after its stem, then the pool over what is left and the linear
    head; ``input_shape`` is the stem's output (H, W, C). With ``identity_init`` each conv's
    first C_in filters start as the identity (``glassnet.init.dirac_``, as airbench does)."""
    H, W, c_in = input_shape

    def conv(c_in: int, c_out: int) -> Conv2d:
        layer = Conv2d(c_in, c_out, 3, padding=1, bias=False, rng=rng, dtype=dtype)
        if identity_init:
            dirac_(layer.weight.value[:c_in])
        return layer

    def bn(channels: int) -> Module:
        return nn.BatchNorm2d(channels).astype(dtype)

    layers: list[Module] = []
    for w in widths:
        layers += [conv(c_in, w), MaxPool2d(2), bn(w), ReLU(), conv(w, w), bn(w), ReLU()]
        c_in, H, W = w, H // 2, W // 2
    return layers + [MaxPool2d((H, W)), Flatten(), Linear(c_in, num_classes, rng=rng, dtype=dtype)]


def whiten_cnn(
    input_shape: tuple[int, int, int],
    widths: tuple[int, ...],
    num_classes: int = 10,
    rng: np.random.Generator | int | None = None,
    dtype: str = "float32",
) -> Sequential:
    """``fast_cnn`` with airbench's whitening stem (Keller Jordan 2024) in place of its first
    conv, BatchNorm and ReLU.

    conv 2x2 (2 * C * 4 channels, no padding, bias) -> ReLU, then ``fast_cnn``'s stages
    (each conv's first C_in filters starting as the identity, ``glassnet.init.dirac_``) and
    head; a 32x32 image runs through the stages at 31, 15, 7 and ends 3x3. The stem's weight
    is meant to be set from the training images by ``glassnet.init.patch_whitening_`` and
    then frozen (``requires_grad = False``; its bias trains): ``glassnet train`` does both for
    the nets in ``WHITENED_STEM``. Fixed whitening filters cost no training and decorrelate
    the pixels, which lets the stages learn faster than from a learned 3x3 stem.
    """
    rng = as_generator(rng)
    H, W, C = input_shape
    k = 2 * C * 4
    stem: list[Module] = [Conv2d(C, k, 2, rng=rng, dtype=dtype), ReLU()]
    stages = _fast_stages((H - 1, W - 1, k), widths, num_classes, rng, dtype, identity_init=True)
    return Sequential(stem + stages)


#: The stage widths of the recipes' nets (``cifar_fast``, ``fashion_fast``).
CIFAR_FAST_WIDTHS = (64, 128, 128)
FASHION_FAST_WIDTHS = (32, 64, 128)


def cifar_fast(
    num_classes: int = 10, rng: np.random.Generator | int | None = None, dtype: str = "float32"
) -> Sequential:
    """``fast_cnn`` for 32x32x3 images (CIFAR-10) with widths 64, 128, 128 (airbench's
    smaller net): the CIFAR-10 recipe's net, 139 MFLOPs per image forward, 574,890
    parameters.

    Example:
        >>> cifar_fast(rng=0).num_parameters()
        574890
    """
    return fast_cnn((32, 32, 3), CIFAR_FAST_WIDTHS, num_classes, rng, dtype)


def fashion_fast(
    num_classes: int = 10, rng: np.random.Generator | int | None = None, dtype: str = "float32"
) -> Sequential:
    """``fast_cnn`` for 28x28x1 images (Fashion-MNIST) with widths 32, 64, 128: the
    Fashion-MNIST recipe's net, 32 MFLOPs per image forward.

    Example:
        >>> fashion_fast(rng=0).num_parameters()
        292666
    """
    return fast_cnn((28, 28, 1), FASHION_FAST_WIDTHS, num_classes, rng, dtype)


def cifar_whiten(
    num_classes: int = 10, rng: np.random.Generator | int | None = None, dtype: str = "float32"
) -> Sequential:
    """``whiten_cnn`` for 32x32x3 images (CIFAR-10) with widths 64, 128, 128: airbench's
    smaller net, 108 MFLOPs per image forward (``cifar_fast``: 139), 569,666
    parameters, 288 of them the frozen whitening filters.

    Example:
        >>> cifar_whiten(rng=0).num_parameters()
        569666
    """
    return whiten_cnn((32, 32, 3), CIFAR_FAST_WIDTHS, num_classes, rng, dtype)


#: The nets whose first layer is a whitening conv, set by ``glassnet.init.patch_whitening_``
#: from the training images and never trained (``freeze_whitening_stem``).
WHITENED_STEM = frozenset({"cifar-whiten"})
#: Training images that set a whitening stem (airbench's count; more changes little).
WHITENING_IMAGES = 5000


def freeze_whitening_stem(model: Sequential, images: np.ndarray | None) -> None:
    """Set the first conv's weight from the first ``WHITENING_IMAGES`` of ``images`` (the
    training set, un-augmented, uint8 or scaled floats), unless ``images`` is None (a resumed
    run's checkpoint brings the weight); then freeze it: no optimizer step changes it (its
    bias trains).

    Example:
        >>> net = cifar_whiten(rng=0)
        >>> freeze_whitening_stem(net, np.random.default_rng(0).integers(0, 256, (64, 32, 32, 3),
        ...                                                               dtype=np.uint8))
        >>> net[0].params["weight"].requires_grad, net[0].params["bias"].requires_grad
        (False, True)
    """
    stem = model[0].weight
    if images is not None:
        patch_whitening_(stem.value, model_input(images[:WHITENING_IMAGES]))
    stem.requires_grad = False


#: name -> (builder, input shape (H, W, C))
MODELS: dict[str, tuple[Callable[..., Module], tuple[int, int, int]]] = {
    "lenet5": (lenet5, (28, 28, 1)),
    "digits-cnn": (digits_cnn, (8, 8, 1)),
    "cifar-cnn": (cifar_cnn, (32, 32, 3)),
    "resnet-cifar": (resnet_cifar, (32, 32, 3)),
    "unet-small": (unet_small, (32, 32, 3)),
    "detector": (detector, (64, 64, 1)),
    "cifar-fast": (cifar_fast, (32, 32, 3)),
    "cifar-whiten": (cifar_whiten, (32, 32, 3)),
    "fashion-fast": (fashion_fast, (28, 28, 1)),
    "unet": (unet, (64, 64, 1)),
}


def build_model(
    name: str,
    num_classes: int = 10,
    rng: np.random.Generator | int | None = None,
    dtype: str = "float32",
) -> tuple[Module, tuple[int, int, int]]:
    """Build the named architecture; returns ``(model, input_shape)``.

    Example:
        >>> model, shape = build_model("lenet5", rng=0)
        >>> shape
        (28, 28, 1)
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    builder, shape = MODELS[name]
    model = builder(num_classes, rng, dtype)
    if isinstance(model, Sequential):  # a Model's Input already gives its shape
        model.input_shape = shape
    return model, shape
