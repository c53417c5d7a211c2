"""Give a static-batch pose ONNX a dynamic batch axis (for CPU/GPU runs in chunks, never the chip).

Tracing Lite-HRNet with a dynamic batch does not work: its adaptive pools and upsamplings take
their output sizes from other tensors' shapes, which the TorchScript exporter then cannot fold.
So the model is traced and simplified at a static batch ``T`` and the batch is freed afterwards.
In a top-down pose CNN the batch is dimension 0 of every tensor and no op mixes rows, so the only
places ``T`` survives in the folded graph are shape operands:

- ``Reshape`` targets ``[T, ...]`` -> ``[0, ...]`` (ONNX: 0 copies the input's dimension);
- ``Resize`` output ``sizes`` ``[T, C, H, W]`` -> the equivalent ``scales`` ``[1, 1, H/h, W/w]``.

Anything else that still holds ``T`` is caught by the caller's verification at two other batch
sizes (:func:`litehrnet.export.export_onnx` checks batch 1 and 3 against PyTorch).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

BATCH_AXIS = "batch"


def _static_shapes(proto: onnx.ModelProto) -> dict[str, list[int]]:
    inferred = onnx.shape_inference.infer_shapes(proto)
    shapes = {}
    for value in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    return shapes


def _constants(proto: onnx.ModelProto) -> dict[str, np.ndarray]:
    values = {init.name: numpy_helper.to_array(init) for init in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def free_batch_axis(proto: onnx.ModelProto, traced_batch: int) -> onnx.ModelProto:
    """A copy of ``proto`` (traced at batch ``traced_batch``, simplified) with a dynamic batch axis."""
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    shapes, constants = _static_shapes(out), _constants(out)
    for index, node in enumerate(out.graph.node):
        name = f"free_batch_{index}"
        if node.op_type == "Reshape" and node.input[1] in constants:
            target = constants[node.input[1]]
            if target.ndim == 1 and len(target) and target[0] == traced_batch \
                    and (shapes.get(node.input[0]) or [None])[0] == traced_batch:
                out.graph.initializer.append(numpy_helper.from_array(np.concatenate([[0], target[1:]]).astype(np.int64), name))
                node.input[1] = name
        elif node.op_type == "Resize" and len(node.input) == 4 and node.input[3] in constants:
            sizes, in_shape = constants[node.input[3]], shapes.get(node.input[0])
            if len(sizes) and sizes[0] == traced_batch and in_shape and None not in in_shape:
                scales = (sizes.astype(np.float64) / np.asarray(in_shape, np.float64)).astype(np.float32)
                out.graph.initializer.append(numpy_helper.from_array(scales, name))
                node.input[2] = name
                del node.input[3]
    used = {name for node in out.graph.node for name in node.input}
    kept = [init for init in out.graph.initializer if init.name in used]
    del out.graph.initializer[:]
    out.graph.initializer.extend(kept)
    del out.graph.value_info[:]
    for value in (*out.graph.input, *out.graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_param = BATCH_AXIS
    return out
