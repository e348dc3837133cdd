"""Writes a copy of a SavedModel with N extra predict signatures, each with its own two nodes
(a Placeholder and an Identity reading it), for benchmarking `smtool validate` on models with
very many signatures and nodes.

Usage: python python/make_many_signatures.py SRC DST N
"""

import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tensorflow.core.framework import types_pb2  # noqa: E402
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2  # noqa: E402


def main():
    src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("saved_model.pb", "fingerprint.pb"))
    model = saved_model_pb2.SavedModel()
    with open(os.path.join(src, "saved_model.pb"), "rb") as f:
        model.ParseFromString(f.read())
    meta = model.meta_graphs[0]
    graph = meta.graph_def
    for i in range(n):
        x = graph.node.add(name=f"many/x{i}", op="Placeholder")
        x.attr["dtype"].type = types_pb2.DT_FLOAT
        y = graph.node.add(name=f"many/y{i}", op="Identity", input=[x.name])
        y.attr["T"].type = types_pb2.DT_FLOAT
        sig = meta.signature_def[f"many_{i}"]
        sig.method_name = "tensorflow/serving/predict"
        for key, node, into in (("x", x, sig.inputs), ("y", y, sig.outputs)):
            info = into[key]
            info.name = node.name + ":0"
            info.dtype = types_pb2.DT_FLOAT
            info.tensor_shape.dim.add(size=-1)
    with open(os.path.join(dst, "saved_model.pb"), "wb") as f:
        f.write(model.SerializeToString())
    print(f"wrote {dst} with {len(meta.signature_def)} signatures, {len(graph.node)} nodes")


if __name__ == "__main__":
    main()
