"""See the math: each step of a CNN written out with the actual numbers.

Every function returns a small result object: ``print`` it to read the explanation, or read
its attributes for the numbers, which come from ``glassnet.functional`` (the same code that
trains models), never from a second implementation.

========================  ============================================================
``conv()``                one weighted sum written out product by product, the output
                          size formula filled in, the whole feature map
``relu()``                values and derivative of max(x, 0)
``pool()``                each window and its maximum, where the gradient flows back
``dense()``               a Linear layer's weighted sum per output
``batchnorm()``           one channel's mean, variance, normalised values, scale and
                          shift; the running statistics; training vs evaluation
``backward()``            dL/dK of one kernel weight term by term, one descent step
``layer(model, image,     the same for one layer of a (trained) model on a real image
index)``
``edges()``               the vertical, horizontal and diagonal edge maps of an image
``transposed()``          one input value spread over a transposed convolution's output,
                          and the same numbers as a convolution's input gradient
``nms()``                 non-maximum suppression step by step, every IoU written out
``residual()``            a residual block y = x + f(x): the gradient at the fork is the
                          sum of the skip's and the branch's, checked numerically
``iou()``                 intersection, union and their ratio per class of two masks
``mask(model, image,      a segmentation model's logits at one pixel and their softmax
at)``
========================  ============================================================

Example:
    >>> import glassnet as gn
    >>> result = gn.explain.conv()
    >>> print(next(line for line in str(result).splitlines() if line.startswith("O[0, 0]")))
    O[0, 0] = 1×1 + 2×0 + 3×(-1) + 4×1 + 5×0 + 6×(-1) + 7×1 + 8×0 + 9×(-1) = -6
    >>> result.value
    -6.0
"""

from glassnet.explain._text import fmt, format_matrix, parse_matrix, weighted_sum
from glassnet.explain.batchnorm import BATCHNORM_VALUES, BatchNormExplanation, batchnorm
from glassnet.explain.conv import BackwardExplanation, ConvExplanation, backward, conv, edges, trace
from glassnet.explain.examples import (
    CONV_IMAGE,
    EDGE_KERNELS,
    KERNELS,
    POOL_IMAGE,
    get_kernel,
    sample_image,
)
from glassnet.explain.model import (
    EXPLAINABLE,
    LayerCall,
    layer,
    layer_calls,
    layer_index,
    layer_input,
    layer_names,
)
from glassnet.explain.nms import NMSExplanation, nms
from glassnet.explain.residual import ResidualExplanation, residual
from glassnet.explain.segmentation import IoUExplanation, MaskExplanation, iou, mask
from glassnet.explain.simple import (
    DenseExplanation,
    PoolExplanation,
    ReluExplanation,
    dense,
    pool,
    relu,
)
from glassnet.explain.transposed import TransposedExplanation, transposed

__all__ = [
    "BATCHNORM_VALUES",
    "CONV_IMAGE",
    "EDGE_KERNELS",
    "EXPLAINABLE",
    "KERNELS",
    "LayerCall",
    "NMSExplanation",
    "POOL_IMAGE",
    "BackwardExplanation",
    "BatchNormExplanation",
    "ConvExplanation",
    "DenseExplanation",
    "IoUExplanation",
    "MaskExplanation",
    "PoolExplanation",
    "ReluExplanation",
    "ResidualExplanation",
    "TransposedExplanation",
    "backward",
    "batchnorm",
    "conv",
    "dense",
    "edges",
    "fmt",
    "format_matrix",
    "get_kernel",
    "iou",
    "layer",
    "layer_calls",
    "layer_index",
    "layer_input",
    "layer_names",
    "mask",
    "nms",
    "parse_matrix",
    "pool",
    "relu",
    "residual",
    "sample_image",
    "trace",
    "transposed",
    "weighted_sum",
]
