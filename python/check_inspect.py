#!/usr/bin/env python3
"""Checks that every fact `smtool inspect --all --json` prints about the fixtures equals what
TensorFlow itself reports: its own SavedModel parser (`saved_model_utils.read_saved_model`), its
op listing (`meta_graph.ops_used_by_graph_def`), its checkpoint reader (`tf.train.load_checkpoint`),
its fingerprint reader and its loader's init-op resolution.

    .venv/bin/python python/check_inspect.py --smtool target/debug/smtool [MODEL_DIR ...]

Exits 0 when every fact agrees, 1 listing the differences otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402
from tensorflow.core.framework import types_pb2  # noqa: E402
from tensorflow.python.framework import meta_graph  # noqa: E402
from tensorflow.python.saved_model import loader_impl  # noqa: E402
from tensorflow.python.tools import saved_model_utils  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEALTHY = [
    "fixtures/digits/model",
    "fixtures/iris_tf1",
    "fixtures/vocab_assets",
    "fixtures/half_plus_two/1",
    "fixtures/half_plus_two/2",
    "fixtures/half_plus_two_pbtxt",
]


def tensor_facts(info) -> dict:
    shape = None if info.tensor_shape.unknown_rank else [d.size for d in info.tensor_shape.dim]
    facts = {"dtype": types_pb2.DataType.Name(info.dtype), "shape": shape}
    encoding = info.WhichOneof("encoding")
    if encoding == "name":
        facts["name"] = info.name
    return facts


def smtool_tensor(t: dict) -> dict:
    facts = {"dtype": t["dtype"], "shape": t["shape"]}
    if t["encoding"] == "name":
        facts["name"] = t["name"]
    return facts


def init_op_name(model_dir: str, tags: list[str]) -> str | None:
    """The init op TensorFlow's loader runs, found by actually loading the model."""
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as sess:
        mgd = tf.compat.v1.saved_model.loader.load(sess, tags, model_dir)
        op = loader_impl.get_init_op(mgd)
        return None if op is None else op.name


def check_model(smtool: str, model_dir: str, errors: list[str]) -> int:
    out = subprocess.run([smtool, "inspect", model_dir, "--all", "--json"],
                         check=True, capture_output=True, text=True)
    report = json.loads(out.stdout)["models"][0]
    sm = saved_model_utils.read_saved_model(model_dir)
    checked = 0

    def same(what: str, ours, theirs) -> None:
        nonlocal checked
        checked += 1
        if ours != theirs:
            errors.append(f"{model_dir}: {what}: smtool says {ours!r}, TensorFlow says {theirs!r}")

    same("tag-sets", sorted(",".join(g["tags"]) for g in report["meta_graphs"]),
         sorted(",".join(mg.meta_info_def.tags) for mg in sm.meta_graphs))
    same("schema version", report["saved_model_schema_version"], sm.saved_model_schema_version)
    for mg, ours in zip(sm.meta_graphs, report["meta_graphs"]):
        tags = list(mg.meta_info_def.tags)
        same(f"{tags} tensorflow_version", ours["tensorflow_version"], mg.meta_info_def.tensorflow_version)
        same(f"{tags} node count", ours["node_count"], len(mg.graph_def.node))
        same(f"{tags} function count", ours["function_count"], len(mg.graph_def.library.function))
        same(f"{tags} ops", sorted(o["op"] for o in ours["ops"]),
             sorted(meta_graph.ops_used_by_graph_def(mg.graph_def)))
        same(f"{tags} signature keys", [s["key"] for s in ours["signatures"]], sorted(mg.signature_def))
        for sig in ours["signatures"]:
            theirs = mg.signature_def[sig["key"]]
            same(f"{sig['key']} method", sig["method_name"], theirs.method_name)
            for side in ("inputs", "outputs"):
                same(f"{sig['key']} {side}",
                     {t["key"]: smtool_tensor(t) for t in sig[side]},
                     {k: tensor_facts(v) for k, v in getattr(theirs, side).items()})
        same(f"{tags} declared assets", sorted(a["filename"] for a in ours["declared_assets"]),
             sorted(a.filename for a in mg.asset_file_def))
        init = ours["init_op"]
        ours_init = init["names"][0].split(":")[0] if init and init["names"] else None
        same(f"{tags} init op", ours_init, init_op_name(model_dir, tags))

    variables = report["variables"]
    prefix = os.path.join(model_dir, "variables", "variables")
    if variables["present"]:
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
        dtypes = reader.get_variable_to_dtype_map()
        same("variable names", sorted(v["name"] for v in variables["entries"]), sorted(shapes))
        for v in variables["entries"]:
            if v["name"] in shapes:
                same(f"variable {v['name']} shape", v["shape"], list(shapes[v["name"]]))
                same(f"variable {v['name']} dtype", v["dtype"],
                     types_pb2.DataType.Name(dtypes[v["name"]].as_datatype_enum))
    else:
        same("has variables", False, os.path.exists(prefix + ".index"))

    fp = report["fingerprint"]
    if os.path.exists(os.path.join(model_dir, "fingerprint.pb")):
        theirs = tf.saved_model.experimental.read_fingerprint(model_dir)
        for field in ("saved_model_checksum", "graph_def_program_hash", "signature_def_hash",
                      "saved_object_graph_hash", "checkpoint_hash"):
            same(f"fingerprint {field}", int(fp[field]), getattr(theirs, field))
    else:
        same("fingerprint", fp, None)
    return checked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smtool", required=True, help="the smtool binary to check")
    parser.add_argument("models", nargs="*", default=[str(ROOT / m) for m in HEALTHY])
    args = parser.parse_args()
    errors: list[str] = []
    checked = sum(check_model(args.smtool, m, errors) for m in args.models)
    for e in errors:
        print(e)
    print(f"{len(args.models)} models, {checked} facts compared with TensorFlow, {len(errors)} differ")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
