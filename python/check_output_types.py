"""Checks the output arity and dtypes smtool derives from its embedded op registry against
TensorFlow's own graph construction.

Input: a JSON file {"<graph file>": {"<node>": [dtype or null, ...] or null, ...}, ...} written by
tests/validate.rs from smtool's `op_registry::output_types` for every top-level node of the `serve`
meta graph. Each graph is imported with `tf.graph_util.import_graph_def`; every node whose outputs
smtool claims to know must have that many outputs with those dtypes (reference dtypes count as
their base dtype).

Usage: python python/check_output_types.py CLAIMS.json   (exit 1 on any disagreement)
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402
from tensorflow.python.tools import saved_model_utils  # noqa: E402


def load(graph_file):
    # TensorFlow's own reader (binary or text format, whichever the directory holds).
    sm = saved_model_utils.read_saved_model(os.path.dirname(graph_file))
    return next(m for m in sm.meta_graphs if list(m.meta_info_def.tags) == ["serve"])


def base(dtype):
    return dtype - 100 if dtype > 100 else dtype


def main():
    with open(sys.argv[1], encoding="utf-8") as fh:
        claims = json.load(fh)
    known = unknown = 0
    problems = []
    for graph_file, nodes in sorted(claims.items()):
        graph = tf.Graph()
        with graph.as_default():
            tf.graph_util.import_graph_def(load(graph_file).graph_def, name="")
        for name, claimed in sorted(nodes.items()):
            if claimed is None:
                unknown += 1
                continue
            known += 1
            actual = [base(t.dtype.as_datatype_enum) for t in graph.get_operation_by_name(name).outputs]
            if len(actual) != len(claimed) or any(
                c is not None and base(c) != a for c, a in zip(claimed, actual)
            ):
                problems.append(f"{graph_file} node '{name}': smtool {claimed}, TensorFlow {actual}")
    for p in problems:
        print("DISAGREE", p)
    print(f"{known} nodes with known outputs ({unknown} unknown): "
          + ("smtool and TensorFlow agree" if not problems else f"{len(problems)} disagreements"))
    return 1 if problems or known == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
