"""Classifies the ops of the installed TensorFlow that are unsafe on a serving host, for the
security rule of `smtool validate` (SM501), by rules over what the op registry says of each op:
its name, and the names of its inputs, outputs and attrs. Nothing is listed by hand except the
few ops no registry field can tell apart (EXPLICIT below).

It reads the registry smtool embeds, data/tf_op_registry.pb (written by python/dump_op_registry.py,
which the test suite checks against TensorFlow), so both files describe the same ops.

Usage: python python/classify_unsafe_ops.py [OUT]   (default: data/unsafe_ops.txt)

Rules, in order; an op gets every hazard a rule gives it:
  1. network      an input named `address`, `server_address` or `protocol` (tf.data service,
                  distributed snapshots, RPC client and server), or a name starting `Rpc` (the ops
                  on RPC client and server handles: calls, registering and starting a server)
  2. network      an attr `debug_urls` (tfdbg ops stream tensors to grpc:// URLs, and write
     writes-files files for file:// URLs)
  3. files        an input or attr that holds a file-system path (PATH_INPUTS, PATH_ATTRS):
                  writes-files when the name says it saves or writes (WRITE_NAME), reads-files
                  otherwise; caches and snapshots do both (READ_WRITE_NAME)
  4. writes-files an input named `writer` (a summary writer: event files, summary databases)
  5. reads-files  an input or output named `reader_handle` (queue-based file readers and the ops
                  reading through them), except IdentityReader(V2), which reads no file
  6. fs-config    an input named `scheme` (sets file-system configuration for a URL scheme)
  7. runs-code    an attr named `token` (py_func: calls back into the Python that built the graph)
  8. EXPLICIT     the prints, and MatchingFiles (its glob input is named `pattern`, as the regex
                  ops' is)

Not listed: collectives, Send/Recv, NCCL and TPU ops. They exchange tensors only with the devices
and workers of the server's own cluster, set up by the server, not with an address from the model.

Output: one op per line, sorted by name, tab-separated: NAME, HAZARDS (comma-separated, from
reads-files, writes-files, network, fs-config, prints, runs-code), RULE (why it is listed).
"""

import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402
from tensorflow.core.framework import op_def_pb2  # noqa: E402

REGISTRY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "tf_op_registry.pb")

NETWORK_INPUTS = {"address", "server_address", "protocol"}
PATH_INPUTS = {
    "filename", "filenames", "file_pattern", "patterns", "prefix", "checkpoint_prefixes",
    "destination_prefix", "ckpt_path", "path", "directory", "shard_dir", "snapshot_path",
    "chunk_file", "logdir", "db_uri", "data_source_name", "new_vocab_file", "old_vocab_file",
}
PATH_ATTRS = {
    "file_pattern", "file_name", "filename", "log_dir_path", "memory_region_name",
    "output_file_path", "vocab_file",
}
WRITE_NAME = re.compile(r"Save|Write|Merge|ToTFRecord|Dump")
READ_WRITE_NAME = re.compile(r"Cache|^SnapshotDataset(V2)?$")
NOT_A_FILE_READER = {"IdentityReader", "IdentityReaderV2"}
EXPLICIT = {
    "Print": ("prints", "prints to the server's log"),
    "PrintV2": ("prints", "prints to the server's log or a file"),
    "MatchingFiles": ("reads-files", "lists files matching its glob input"),
}
ORDER = ["reads-files", "writes-files", "network", "fs-config", "prints", "runs-code"]


def classify(op):
    inputs = {a.name for a in op.input_arg}
    outputs = {a.name for a in op.output_arg}
    attrs = {a.name for a in op.attr}
    hazards, why = set(), []
    net = sorted(inputs & NETWORK_INPUTS)
    if net:
        hazards.add("network")
        why.append(f"input '{net[0]}'")
    if op.name.startswith("Rpc"):
        hazards.add("network")
        why.append("name Rpc*")
    if "debug_urls" in attrs:
        hazards |= {"network", "writes-files"}
        why.append("attr 'debug_urls'")
    paths = [f"input '{n}'" for n in sorted(inputs & PATH_INPUTS)]
    paths += [f"attr '{n}'" for n in sorted(attrs & PATH_ATTRS)]
    if paths:
        if READ_WRITE_NAME.search(op.name):
            hazards |= {"reads-files", "writes-files"}
        elif WRITE_NAME.search(op.name):
            hazards.add("writes-files")
        else:
            hazards.add("reads-files")
        why.append(paths[0])
    if "writer" in inputs:
        hazards.add("writes-files")
        why.append("input 'writer'")
    if "reader_handle" in inputs | outputs and op.name not in NOT_A_FILE_READER:
        hazards.add("reads-files")
        why.append("reader_handle")
    if "scheme" in inputs:
        hazards.add("fs-config")
        why.append("input 'scheme'")
    if "token" in attrs:
        hazards.add("runs-code")
        why.append("attr 'token'")
    if op.name in EXPLICIT:
        hazard, reason = EXPLICIT[op.name]
        hazards.add(hazard)
        why.append(f"listed: {reason}")
    return [h for h in ORDER if h in hazards], why


def embedded_ops():
    """The op registry smtool embeds."""
    ops = op_def_pb2.OpList()
    with open(REGISTRY, "rb") as fh:
        ops.ParseFromString(fh.read())
    return ops


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "data/unsafe_ops.txt"
    ops = embedded_ops()
    rows = []
    for op in sorted(ops.op, key=lambda o: o.name):
        hazards, why = classify(op)
        if hazards:
            rows.append("\t".join([op.name, ",".join(hazards), "; ".join(why)]))
    missing = set(EXPLICIT) - {r.split("\t")[0] for r in rows}
    if missing:
        raise SystemExit(f"EXPLICIT names ops TensorFlow does not register: {sorted(missing)}")
    lines = [
        f"# Ops of TensorFlow {tf.__version__} unsafe on a serving host ({len(rows)} ops), written "
        "by python/classify_unsafe_ops.py from the op registry; do not edit.",
        "# NAME\tHAZARDS\tRULE (rules described in the script)",
    ] + rows
    with open(out, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"wrote {len(rows)} unsafe ops of TensorFlow {tf.__version__} to {out}")


if __name__ == "__main__":
    main()
