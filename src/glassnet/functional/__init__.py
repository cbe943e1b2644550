"""Pure math: every op as a ``<op>_forward`` / ``<op>_backward`` pair, arrays in, arrays out.

Forward returns ``(out, cache)``; backward takes ``(dout, cache)`` and returns the gradients in
the order of the forward's inputs. Nothing here holds state.

Shape vocabulary used in every docstring:

    N       batch size
    C_in    input channels          C_out   output channels
    H, W    input height and width  H_out, W_out   output height and width
    KH, KW  kernel height and width
    S       stride                  P       padding              D   dilation
    F_in    input features          F_out   output features      K   classes

Images are channels-last, ``(N, H, W, C)``. Convolution weights are ``(C_out, C_in, KH, KW)``,
PyTorch's and ONNX's layout, so weights cross those boundaries without a transpose. Linear
weights are ``(F_out, F_in)``, also as in PyTorch.
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
from glassnet.functional.conv import (
    conv2d_backward,
    conv2d_forward,
    conv2d_input_grad,
    conv2d_param_grads,
)
from glassnet.functional.dropout import dropout_backward, dropout_forward
from glassnet.functional.linear import linear_backward, linear_forward
from glassnet.functional.loss import bce_with_logits, cross_entropy, mse
from glassnet.functional.pooling import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    global_avg_pool2d_backward,
    global_avg_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
)

__all__ = [
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "bce_with_logits",
    "conv2d_backward",
    "conv2d_forward",
    "conv2d_input_grad",
    "conv2d_param_grads",
    "cross_entropy",
    "dropout_backward",
    "dropout_forward",
    "global_avg_pool2d_backward",
    "global_avg_pool2d_forward",
    "leaky_relu_backward",
    "leaky_relu_forward",
    "linear_backward",
    "linear_forward",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "mse",
    "relu_backward",
    "relu_forward",
    "sigmoid_backward",
    "sigmoid_forward",
    "softmax_backward",
    "softmax_forward",
    "tanh_backward",
    "tanh_forward",
]
