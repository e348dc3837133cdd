"""Writes the op registry of the installed TensorFlow as smtool's compact snapshot.

smtool validate uses it to flag ops TensorFlow does not register (custom ops, typos, ops from a
newer release) and to know how many outputs a node has and of which dtypes.

Usage: python python/dump_op_registry.py [OUT]   (default: data/tf_op_registry.txt)

Format, one op per line, sorted by name, fields separated by a tab:

    NAME  INPUTS  OUTPUTS  DEFAULTS

INPUTS and OUTPUTS are comma-separated argument specs ("-" when there are none):
    7        one tensor of the fixed DataType 7 (DT_STRING)
    T        one tensor whose dtype is the node's type attr T
    N*T      N tensors (int attr N) of type attr T; N*7 for a fixed type
    [Tout]   one tensor per entry of the node's list(type) attr Tout
DEFAULTS lists default values of the attrs those specs use, "-" when none:
    T=1;N=2;Tout=[1,7]
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402
from tensorflow.core.framework import op_def_pb2  # noqa: E402
from tensorflow.python.client import pywrap_tf_session as c_api  # noqa: E402


def arg_spec(arg):
    if arg.type_list_attr:
        return f"[{arg.type_list_attr}]"
    one = arg.type_attr if arg.type_attr else str(int(arg.type))
    if arg.number_attr:
        return f"{arg.number_attr}*{one}"
    return one


def args_field(args):
    return ",".join(arg_spec(a) for a in args) if args else "-"


def used_attrs(op):
    names = set()
    for arg in list(op.input_arg) + list(op.output_arg):
        for n in (arg.type_attr, arg.number_attr, arg.type_list_attr):
            if n:
                names.add(n)
    return names


def defaults_field(op):
    used = used_attrs(op)
    parts = []
    for attr in op.attr:
        if attr.name not in used or not attr.HasField("default_value"):
            continue
        v = attr.default_value
        kind = v.WhichOneof("value")
        if kind == "type":
            parts.append(f"{attr.name}={int(v.type)}")
        elif kind == "i":
            parts.append(f"{attr.name}={v.i}")
        elif kind == "list":
            parts.append(f"{attr.name}=[{','.join(str(int(t)) for t in v.list.type)}]")
    return ";".join(parts) if parts else "-"


def registered_ops():
    """The OpList of every op the installed TensorFlow registers."""
    buf = c_api.TF_GetAllOpList()
    try:
        ops = op_def_pb2.OpList()
        ops.ParseFromString(c_api.TF_GetBuffer(buf))
    finally:
        c_api.TF_DeleteBuffer(buf)
    return ops


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "data/tf_op_registry.txt"
    ops = registered_ops()
    lines = [
        f"# TensorFlow {tf.__version__} op registry ({len(ops.op)} ops), written by "
        "python/dump_op_registry.py; do not edit.",
        "# NAME\tINPUTS\tOUTPUTS\tDEFAULTS (format described in the script)",
    ]
    for op in sorted(ops.op, key=lambda o: o.name):
        fields = [op.name, args_field(op.input_arg), args_field(op.output_arg), defaults_field(op)]
        for f in fields:
            if "\t" in f or "\n" in f:
                raise SystemExit(f"op {op.name}: unexpected whitespace in {f!r}")
        lines.append("\t".join(fields))
    with open(out, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"wrote {len(ops.op)} ops of TensorFlow {tf.__version__} to {out}")


if __name__ == "__main__":
    main()
