"""``glassnet explain``: the math of a CNN printed with the actual numbers, and pictures.

    glassnet explain conv | relu | pool | dense | backward | batchnorm   arithmetic
    glassnet explain transposed                              a transposed convolution
    glassnet explain residual                                gradients adding at a fork
    glassnet explain nms                                     non-maximum suppression steps
    glassnet explain edges | filters | features              PNG pictures
    glassnet explain iou | mask                              segmentation's numbers

Every arithmetic subcommand works on the seeds' small examples by default, on numbers given
inline (``--image "1,2,3;4,5,6;7,8,9"``), or on one layer of a saved model with a real image
(``--model M --image I --layer L --at i,j --channel c``). The work is done by
``glassnet.explain`` and ``glassnet.viz``; this module only parses and prints.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from glassnet.cli import CLIError
from glassnet.cli._explain_segmentation import register_topics as register_segmentation_topics

MODEL_HELP = (
    "explain a layer of this saved model (.safetensors: a Sequential or a Model) on --image instead"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="print the math of a CNN step with the actual numbers, or draw it",
        description="Print each step of a CNN with the actual numbers (convolution, ReLU, "
        "pooling, dense layer, backward pass and gradient descent), on the seeds' examples, "
        "numbers of your own, or a layer of a saved model; or draw edge maps, learned "
        "filters and feature maps as PNG files.",
    )
    topics = parser.add_subparsers(dest="topic", metavar="TOPIC", required=True)

    conv = topics.add_parser(
        "conv",
        help="the weighted sum at one position, the output size, the feature map",
        description="Write out one weighted sum of a convolution product by product. Default: "
        "the vertical-edge kernel [[1,0,-1]]*3 on a 5x5 image whose top-left 3x3 holds 1..9 "
        "(the rest 0), which gives -6 at (0, 0).",
    )
    _image_options(conv)
    _kernel_options(conv)
    conv.add_argument("--at", default="0,0", metavar="I,J", help="output position (default 0,0)")
    conv.add_argument("--bias", type=float, help="a number added to every sum")
    _model_options(conv)
    conv.set_defaults(func=run_conv)

    relu = topics.add_parser(
        "relu",
        help="ReLU's values and derivative",
        description="Show y = max(x, 0) and dy/dx for each value. Default: the feature map "
        "of 'glassnet explain conv'.",
    )
    relu.add_argument("--values", metavar="MATRIX", help="numbers, e.g. '-2,0,3;1,-1,4'")
    relu.add_argument("--at", metavar="I,J", help="write out only this position")
    _model_options(relu)
    relu.set_defaults(func=run_relu)

    pool = topics.add_parser(
        "pool",
        help="max pooling: each window, its maximum, where the gradient flows back",
        description="Show each pooling window and its maximum, then the backward pass "
        "(max_pool2d_backward). Default: the seeds' 4x4 example [[1,3,2,1],[4,6,5,2],"
        "[7,2,9,8],[1,0,3,4]] pooled 2x2 to [[6,5],[7,9]].",
    )
    pool.add_argument("--image", metavar="MATRIX", help="the input, e.g. '1,3;4,6'")
    pool.add_argument("--size", type=int, default=2, help="window size (default 2)")
    pool.add_argument("--stride", type=int, help="default: the window size")
    pool.add_argument("--dout", metavar="MATRIX", help="dL/dY (default 1, 2, 3, ...)")
    pool.add_argument("--at", metavar="I,J", help="write out only this window")
    _model_options(pool)
    pool.set_defaults(func=run_pool)

    dense = topics.add_parser(
        "dense",
        help="a dense (Linear) layer's weighted sum per output",
        description="Write out each output of a small Linear layer as a weighted sum. "
        "Default: x = [6, 5, 7, 9] (the pooled example, flattened) into 2 outputs.",
    )
    dense.add_argument("--input", metavar="VECTOR", help="x, e.g. '1,2,3'")
    dense.add_argument("--weight", metavar="MATRIX", help="W, one row per output")
    dense.add_argument("--bias", metavar="VECTOR", help="b, one number per output")
    _model_options(dense)
    dense.set_defaults(func=run_dense)

    bn = topics.add_parser(
        "batchnorm",
        help="batch normalization of one channel: mean, variance, scale, shift; train vs eval",
        description="Normalise one channel's values with the batch's mean and biased "
        "variance, scale by gamma and shift by beta, update the running statistics (unbiased "
        "variance), then normalise the same values as evaluation does, with the running "
        "statistics. Default: the values [[1,2,3],[6,4,2]] (2 samples x 3 positions), "
        "gamma 2, beta 0.5.",
    )
    bn.add_argument("--values", metavar="MATRIX", help="the channel, e.g. '1,2,3;6,4,2'")
    bn.add_argument("--weight", type=float, default=2.0, help="gamma (default 2)")
    bn.add_argument("--bias", type=float, default=0.5, help="beta (default 0.5)")
    bn.add_argument("--eps", type=float, default=1e-5, help="default 1e-5")
    bn.add_argument("--momentum", type=float, default=0.1, help="default 0.1")
    bn.add_argument("--running-mean", type=float, default=0.0, help="before the step (0)")
    bn.add_argument("--running-var", type=float, default=1.0, help="before the step (1)")
    bn.add_argument("--at", metavar="I,J", help="write out only this value")
    bn.set_defaults(func=run_batchnorm)

    back = topics.add_parser(
        "backward",
        help="the gradient of one kernel weight, term by term, and one descent step",
        description="Write out dL/dK[m, n] = sum over i, j of dL/dO[i, j] × I[i+m, j+n], "
        "check it against conv2d_backward, then update K <- K - lr × dL/dK. The loss is "
        "L = sum of the outputs (every dL/dO = 1) unless --target T is given, then "
        "L = 1/2 sum (O - T)^2.",
    )
    _image_options(back)
    _kernel_options(back)
    back.add_argument("--weight", default="0,0", metavar="M,N", help="the kernel weight")
    back.add_argument("--lr", type=float, default=0.01, help="learning rate (default 0.01)")
    back.add_argument("--target", metavar="MATRIX", help="the wanted feature map T")
    back.set_defaults(func=run_backward)

    transposed = topics.add_parser(
        "transposed",
        help="a transposed convolution: one value spread over the output, and why it is a "
        "convolution's input gradient",
        description="Show how each input value of a transposed convolution spreads a scaled "
        "copy of the kernel over the output (copies S apart, adding where they overlap), one "
        "output value as the sum of the copies reaching it, and the same output computed as "
        "conv2d_backward's input gradient. Default: X = [[1,2],[3,4]], K = [[1,0,-1],[2,1,0],"
        "[0,1,2]], stride 2.",
    )
    transposed.add_argument("--image", metavar="MATRIX", help="the input X, e.g. '1,2;3,4'")
    transposed.add_argument(
        "--kernel", help="a kernel name or a matrix like '1,0;0,-1' (default [[1,0,-1],...])"
    )
    transposed.add_argument("--stride", type=int, default=2, help="default 2")
    transposed.add_argument("--padding", type=int, default=0)
    transposed.add_argument("--output-padding", type=int, default=0)
    transposed.add_argument(
        "--spread", default="0,1", metavar="I,J", help="the input value to spread alone"
    )
    transposed.add_argument("--at", metavar="I,J", help="the output value to write out as a sum")
    transposed.set_defaults(func=run_transposed)

    res = topics.add_parser(
        "residual",
        help="a residual block y = x + f(x): the gradient at the fork is the sum of the "
        "branches' gradients",
        description="Run a residual block y = x + ReLU(W x + b) forward and backward with "
        "L = 1/2 sum (y - t)^2, write out the gradient reaching x through the skip and "
        "through f, their sum, and check it against the graph model's backward and finite "
        "differences. Default: x = [1, 2], W = [[0.5, -1], [2, 0.5]], b = [0, -1], t = [0, 1].",
    )
    res.add_argument("--input", metavar="VECTOR", help="x, e.g. '1,2'")
    res.add_argument("--weight", metavar="MATRIX", help="W, n x n, one row per output of f")
    res.add_argument("--bias", metavar="VECTOR", help="b (default: zeros with your own x or W)")
    res.add_argument("--target", metavar="VECTOR", help="t (default: zeros with your own x or W)")
    res.set_defaults(func=run_residual)

    _register_nms(topics)

    edges = topics.add_parser(
        "edges",
        help="draw vertical, horizontal and diagonal edge maps of an image (PNG)",
        description="Apply the vertical, horizontal and diagonal edge kernels to an image and "
        "draw the input and the three feature maps side by side. Default image: a built-in "
        "64x64 drawing of a house.",
    )
    edges.add_argument("--image", help="a PNG/JPEG file (read as greyscale)")
    edges.add_argument("--resize", metavar="H,W", help="resize the image first")
    edges.add_argument("--out", default=".", help="folder for edges.png (default: here)")
    edges.set_defaults(func=run_edges)

    filters = topics.add_parser(
        "filters",
        help="draw the learned filters of every conv layer of a saved model (PNG)",
        description="Draw every Conv2d and ConvTranspose2d layer's kernels as a grid, coloured "
        "around 0 (a Sequential or a Model).",
    )
    filters.add_argument("model", help="a .safetensors model file saved by glassnet")
    filters.add_argument("--out", default=".", help="folder for filters.png (default: here)")
    filters.set_defaults(func=run_filters)

    features = topics.add_parser(
        "features",
        help="draw the feature maps of one image through every conv layer (PNG)",
        description="Run one image through a saved model (a Sequential or a Model) and draw "
        "each Conv2d and ConvTranspose2d layer's output channels.",
    )
    features.add_argument("model", help="a .safetensors model file saved by glassnet")
    features.add_argument("--image", required=True, help="a PNG/JPEG file")
    features.add_argument("--input-size", metavar="H,W", help="if the model records none")
    features.add_argument("--invert", action="store_true", help="invert pixels (as in MNIST)")
    features.add_argument("--out", default=".", help="folder for features.png (default: here)")
    features.set_defaults(func=run_features)

    register_segmentation_topics(topics)


def _register_nms(topics: argparse._SubParsersAction) -> None:
    nms = topics.add_parser(
        "nms",
        help="non-maximum suppression step by step: each kept box, the boxes it removes, every IoU",
        description="Greedy non-maximum suppression per class, as the detector's decoding "
        "runs it: take the best-scoring box left, keep it, remove the boxes of its class whose "
        "IoU with it is above the threshold, repeat. Each IoU is written out as intersection "
        "over union. Default: five boxes of two classes.",
    )
    nms.add_argument(
        "--boxes", metavar="MATRIX", help="rows x0,y0,x1,y1, e.g. '0,0,10,10;1,0,11,10'"
    )
    nms.add_argument("--scores", metavar="VECTOR", help="one score per box, e.g. '0.9,0.8'")
    nms.add_argument("--classes", metavar="VECTOR", help="one class per box (default all 0)")
    nms.add_argument("--iou-threshold", type=float, default=0.5, help="default 0.5")
    nms.set_defaults(func=run_nms)


def _image_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--image",
        help="a matrix like '1,2,3;4,5,6;7,8,9', or a PNG/JPEG file (greyscale, pixels 0-255)",
    )
    parser.add_argument("--resize", metavar="H,W", help="resize an image file first")


def _kernel_options(parser: argparse.ArgumentParser) -> None:
    from glassnet.explain import KERNELS

    parser.add_argument(
        "--kernel",
        default="vertical",
        help=f"a name ({', '.join(KERNELS)}) or a matrix like '1,0;0,-1' (default vertical)",
    )
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--padding", type=int, default=0)
    parser.add_argument("--dilation", type=int, default=1)
    parser.add_argument(
        "--convolution",
        action="store_true",
        help="true convolution (flip the kernel) instead of cross-correlation",
    )


def _model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("a layer of a saved model")
    group.add_argument("--model", help=MODEL_HELP)
    group.add_argument(
        "--layer",
        help="the layer's index, or its name in a Model, e.g. conv1 (default: the first fitting)",
    )
    group.add_argument(
        "--channel", type=int, default=0, help="output channel, or output unit of a Linear"
    )
    group.add_argument("--input-size", metavar="H,W", help="if the model records none")
    group.add_argument("--invert", action="store_true", help="invert pixels (as in MNIST)")
    if not any(action.dest == "image" for action in parser._actions):
        group.add_argument("--image", help="a PNG/JPEG file to run through the model")


# -- inputs ------------------------------------------------------------------------------------


def _position(text: str | None) -> tuple[int, int] | None:
    from glassnet.explain._text import parse_position

    return None if text is None else parse_position(text)


def _file_image(path: str, resize: str | None) -> Any:
    """An image file as uint8 (H, W, 1), at its own size or ``--resize``."""
    from glassnet.cli._common import parse_shape
    from glassnet.data.images import read_image

    size = None if resize is None else parse_shape(resize)
    if size is not None and len(size) != 2:
        raise CLIError(f"--resize expects H,W, got {resize!r}")
    return read_image(path, size)


def _matrix_or_file(text: str | None, resize: str | None) -> Any:
    """``--image``: an inline matrix, or a file read as greyscale pixel values 0-255."""
    from glassnet.explain._text import looks_like_matrix

    if text is None or (looks_like_matrix(text) and not Path(text).is_file()):
        return text
    return _file_image(text, resize)[:, :, 0].astype(float)  # (H, W), 0-255


def _model_and_image(args: argparse.Namespace) -> tuple[Any, Any]:
    """The saved model and ``--image`` converted to its input shape, scaled to [0, 1]."""
    from glassnet.cli._common import load_images, load_network, parse_shape
    from glassnet.data import to_float32
    from glassnet.nn.layers import Conv2d
    from glassnet.nn.model import Model

    if args.image is None:
        raise CLIError("--model needs --image, the picture to run through the model")
    model = load_network(args.model)
    shape = model.input_shape
    if args.input_size is not None and isinstance(model, Model):
        raise CLIError(
            f"{args.model} is a Model built for {shape} inputs; --input-size cannot change it"
        )
    if args.input_size is not None:
        size = parse_shape(args.input_size)
        if len(size) != 2:
            raise CLIError(f"--input-size expects H,W, got {args.input_size!r}")
        first = next((lay for lay in model.layers if isinstance(lay, Conv2d)), None)
        shape = (*size, shape[2] if shape else first.in_channels if first else 1)
    if shape is None:
        raise CLIError(f"{args.model} does not record its input shape: pass --input-size H,W")
    return model, to_float32(load_images([args.image], shape, args.invert))[0]


def _explain_model_layer(args: argparse.Namespace, topic: str) -> Any:
    """Run ``--model`` on ``--image`` and explain its ``--layer`` (checked to fit ``topic``)."""
    from glassnet import explain

    model, image = _model_and_image(args)
    kind = explain.EXPLAINABLE[topic]
    names = explain.layer_names(model)
    fitting = [i for i, lay in enumerate(model.layers) if isinstance(lay, kind)]
    if args.layer is None:
        if not fitting:
            raise CLIError(f"{args.model} has no {kind.__name__} layer")
        index = fitting[0]
    else:
        index = explain.layer_index(model, args.layer)
    if index not in fitting:
        raise CLIError(
            f"layer {names[index]} is {model.layers[index]!r}, not a {kind.__name__}; "
            f"{kind.__name__} layers in this model: "
            f"{', '.join(names[i] for i in fitting) or 'none'}"
        )
    at = _position(getattr(args, "at", None)) or (0, 0)
    return explain.layer(model, image, index, at, args.channel)


# -- subcommands -------------------------------------------------------------------------------


def run_conv(args: argparse.Namespace) -> int:
    from glassnet import explain

    if args.model is not None:
        print(_explain_model_layer(args, "conv"))
        return 0
    print(
        explain.conv(
            _matrix_or_file(args.image, args.resize),
            args.kernel,
            _position(args.at) or (0, 0),
            args.stride,
            args.padding,
            args.dilation,
            "convolution" if args.convolution else "cross-correlation",
            args.bias,
        )
    )
    return 0


def run_relu(args: argparse.Namespace) -> int:
    from glassnet import explain

    if args.model is not None:
        print(_explain_model_layer(args, "relu"))
        return 0
    print(explain.relu(args.values, _position(args.at)))
    return 0


def run_pool(args: argparse.Namespace) -> int:
    from glassnet import explain

    if args.model is not None:
        print(_explain_model_layer(args, "pool"))
        return 0
    print(explain.pool(args.image, args.size, args.stride, args.dout, _position(args.at)))
    return 0


def run_dense(args: argparse.Namespace) -> int:
    from glassnet import explain

    if args.model is not None:
        print(_explain_model_layer(args, "dense"))
        return 0
    print(explain.dense(args.input, args.weight, args.bias))
    return 0


def run_batchnorm(args: argparse.Namespace) -> int:
    from glassnet import explain

    print(
        explain.batchnorm(
            args.values, args.weight, args.bias, args.eps, args.momentum,
            args.running_mean, args.running_var, _position(args.at),
        )
    )  # fmt: skip
    return 0


def run_backward(args: argparse.Namespace) -> int:
    from glassnet import explain

    print(
        explain.backward(
            _matrix_or_file(args.image, args.resize),
            args.kernel,
            _position(args.weight) or (0, 0),
            args.lr,
            args.target,
            args.stride,
            args.padding,
            args.dilation,
            "convolution" if args.convolution else "cross-correlation",
        )
    )
    return 0


def run_transposed(args: argparse.Namespace) -> int:
    from glassnet import explain

    print(
        explain.transposed(
            args.image,
            args.kernel,
            args.stride,
            args.padding,
            args.output_padding,
            _position(args.spread) or (0, 1),
            _position(args.at),
        )
    )
    return 0


def run_residual(args: argparse.Namespace) -> int:
    from glassnet import explain

    print(explain.residual(args.input, args.weight, args.bias, args.target))
    return 0


def run_nms(args: argparse.Namespace) -> int:
    from glassnet import explain

    print(explain.nms(args.boxes, args.scores, args.classes, args.iou_threshold))
    return 0


def run_edges(args: argparse.Namespace) -> int:
    from glassnet import viz

    image = None
    if args.image is not None:
        image = _file_image(args.image, args.resize)[:, :, 0] / 255.0  # (H, W) in [0, 1]
    print(f"wrote {viz.plot_edges(image, Path(args.out) / 'edges.png')}")
    return 0


def run_filters(args: argparse.Namespace) -> int:
    from glassnet import viz
    from glassnet.cli._common import load_network

    model = load_network(args.model)
    print(f"wrote {viz.plot_filters(model, Path(args.out) / 'filters.png')}")
    return 0


def run_features(args: argparse.Namespace) -> int:
    from glassnet import viz

    model, image = _model_and_image(args)
    print(f"wrote {viz.plot_feature_maps(model, image, Path(args.out) / 'features.png')}")
    return 0
