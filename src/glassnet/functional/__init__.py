"""Pure math: every op as a ``<op>_forward`` / ``<op>_backward`` pair, arrays in, arrays out.

Forward returns ``(out, cache)``; backward takes ``(dout, cache)`` and returns the gradients in
the order of the forward's inputs. Nothing here holds state.

Shape vocabulary used in every docstring:

    N       batch size
    C_in    input channels          C_out   output channels
    H, W    input height and width  H_out, W_out   output height and width
    KH, KW  kernel height and width
    S       stride                  P       padding              D   dilation
    G       groups (of channels)    C_g     channels per group, C_in / G
    F_in    input features          F_out   output features      K   classes

Images are channels-last, ``(N, H, W, C)``. Convolution, pooling and upsampling compute in
the layout ``(C, H, W, N)`` (channels first, batch last: see ``_windows``); their ``_chwn``
functions work in it directly, which is how ``Sequential`` runs them, with no conversion
between layers.
Each op's plain form is read first in its file (``conv.py``: im2col and one product per group);
the convolution's speed routes, tested equal to it, live apart in ``conv_fast.py``.
Batch normalization names its channel axis instead (-1 in the public layouts, 0 in the
compute layout).
Convolution weights are ``(C_out, C_in / G, KH, KW)``, PyTorch's and ONNX's layout, so weights
cross those boundaries without a transpose; transposed convolution weights are
``(C_in, C_out / G, KH, KW)``, also as in PyTorch and ONNX. Linear weights are
``(F_out, F_in)``, also as in PyTorch.
"""

from glassnet.functional.activation import (
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    softmax_backward,
    softmax_forward,
    tanh_backward,
    tanh_forward,
)
from glassnet.functional.batchnorm import (
    batch_norm_backward,
    batch_norm_backward_rows,
    batch_norm_eval_affine,
    batch_norm_forward,
    batch_norm_forward_rows,
    batch_norm_running_stats,
    batch_norm_statistics,
)
from glassnet.functional.conv import (
    conv2d_backward,
    conv2d_backward_chwn,
    conv2d_forward,
    conv2d_forward_chwn,
)
from glassnet.functional.conv_transpose import (
    conv_transpose2d_backward,
    conv_transpose2d_backward_chwn,
    conv_transpose2d_forward,
    conv_transpose2d_forward_chwn,
)
from glassnet.functional.detection import centernet_loss, focal_loss_with_logits, masked_l1
from glassnet.functional.dropout import dropout_backward, dropout_forward
from glassnet.functional.linear import linear_backward, linear_forward
from glassnet.functional.loss import (
    bce_with_logits,
    cross_entropy,
    dice_cross_entropy,
    dice_loss,
    mse,
)
from glassnet.functional.merge import (
    add_backward,
    add_forward,
    concatenate_backward,
    concatenate_forward,
)
from glassnet.functional.pooling import (
    avg_pool2d_backward,
    avg_pool2d_backward_chwn,
    avg_pool2d_forward,
    avg_pool2d_forward_chwn,
    global_avg_pool2d_backward,
    global_avg_pool2d_backward_chwn,
    global_avg_pool2d_forward,
    global_avg_pool2d_forward_chwn,
    max_pool2d_backward,
    max_pool2d_backward_chwn,
    max_pool2d_forward,
    max_pool2d_forward_chwn,
)
from glassnet.functional.upsample import (
    upsample_backward,
    upsample_backward_chwn,
    upsample_forward,
    upsample_forward_chwn,
)

__all__ = [
    "add_backward",
    "add_forward",
    "concatenate_backward",
    "concatenate_forward",
    "avg_pool2d_backward",
    "avg_pool2d_backward_chwn",
    "avg_pool2d_forward",
    "avg_pool2d_forward_chwn",
    "batch_norm_backward",
    "batch_norm_backward_rows",
    "batch_norm_eval_affine",
    "batch_norm_forward",
    "batch_norm_forward_rows",
    "batch_norm_running_stats",
    "batch_norm_statistics",
    "bce_with_logits",
    "conv2d_backward",
    "conv2d_backward_chwn",
    "conv2d_forward",
    "conv2d_forward_chwn",
    "conv_transpose2d_backward",
    "conv_transpose2d_backward_chwn",
    "conv_transpose2d_forward",
    "conv_transpose2d_forward_chwn",
    "centernet_loss",
    "cross_entropy",
    "dice_cross_entropy",
    "dice_loss",
    "dropout_backward",
    "dropout_forward",
    "focal_loss_with_logits",
    "global_avg_pool2d_backward",
    "global_avg_pool2d_backward_chwn",
    "global_avg_pool2d_forward",
    "global_avg_pool2d_forward_chwn",
    "leaky_relu_backward",
    "leaky_relu_forward",
    "linear_backward",
    "linear_forward",
    "masked_l1",
    "max_pool2d_backward",
    "max_pool2d_backward_chwn",
    "max_pool2d_forward",
    "max_pool2d_forward_chwn",
    "mse",
    "relu_backward",
    "relu_forward",
    "sigmoid_backward",
    "sigmoid_forward",
    "softmax_backward",
    "softmax_forward",
    "tanh_backward",
    "tanh_forward",
    "upsample_backward",
    "upsample_backward_chwn",
    "upsample_forward",
    "upsample_forward_chwn",
]
