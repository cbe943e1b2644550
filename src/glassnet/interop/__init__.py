"""Interop: ONNX export and PyTorch import/export, each converting layouts explicitly.

- ``export_onnx(model, path, input_shape)``: an ONNX file taking the same NHWC input.
- ``from_torch(module, input_shape)``: a glassnet model from a ``torch.nn.Sequential``.
- ``load_torch_state_dict(model, state_dict, input_shape)``: PyTorch weights into glassnet.
- ``to_torch(model, input_shape)``: the same model in PyTorch (NCHW), e.g. as a reference.

Nothing here imports onnx or torch until a function that needs it runs.
"""

from glassnet.interop.onnx import export_onnx
from glassnet.interop.torch import from_torch, load_torch_state_dict, to_torch

__all__ = ["export_onnx", "from_torch", "load_torch_state_dict", "to_torch"]
