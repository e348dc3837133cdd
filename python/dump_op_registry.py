"""Writes the op registry of the installed TensorFlow as smtool's embedded op list.

The output is a binary `tensorflow.OpList` (tensorflow/core/framework/op_def.proto): every op
TensorFlow registers (`TF_GetAllOpList`), sorted by name, each OpDef stripped of its documentation
the way TensorFlow's exporters strip a meta graph's `stripped_op_list`. smtool embeds it (see
src/graph/op_registry.rs) and uses it for everything it needs to know about an op:
- `smtool validate`: which ops exist (SM601) and how many outputs of which dtypes a node has;
- `smtool add-classify`: default attrs of the nodes it builds, the checks on them, and the OpDefs it
  adds to a meta graph's `stripped_op_list`;
- python/classify_unsafe_ops.py reads it to derive data/unsafe_ops.txt.

Usage: python python/dump_op_registry.py [OUT]   (default: data/tf_op_registry.pb)

The test suite runs this script and fails when the committed file differs from its output.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402
from tensorflow.core.framework import op_def_pb2  # noqa: E402
from tensorflow.python.client import pywrap_tf_session as c_api  # noqa: E402

DEFAULT_OUT = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "tf_op_registry.pb")
)


def registered_ops():
    """The OpList of every op the installed TensorFlow registers, as TensorFlow returns it."""
    buf = c_api.TF_GetAllOpList()
    try:
        ops = op_def_pb2.OpList()
        ops.ParseFromString(c_api.TF_GetBuffer(buf))
    finally:
        c_api.TF_DeleteBuffer(buf)
    return ops


def stripped(op):
    """`op` without its documentation, as in a meta graph's `stripped_op_list`."""
    out = op_def_pb2.OpDef()
    out.CopyFrom(op)
    out.ClearField("summary")
    out.ClearField("description")
    for arg in list(out.input_arg) + list(out.output_arg):
        arg.ClearField("description")
    for attr in out.attr:
        attr.ClearField("description")
    return out


def embedded_ops():
    """The OpList smtool embeds: every registered op, stripped, sorted by name."""
    ops = op_def_pb2.OpList()
    for op in sorted(registered_ops().op, key=lambda o: o.name):
        ops.op.append(stripped(op))
    return ops


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT
    ops = embedded_ops()
    data = ops.SerializeToString(deterministic=True)
    with open(out, "wb") as fh:
        fh.write(data)
    print(f"wrote {len(ops.op)} ops of TensorFlow {tf.__version__} ({len(data)} bytes) to {out}")


if __name__ == "__main__":
    main()
