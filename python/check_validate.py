"""Checks `smtool validate --json` against TensorFlow's own signature rule.

For every signature of every model in the report, the report's `valid` (smtool's reading of
TensorFlow's static classify/regress/predict rule) must equal what
`signature_def_utils.is_valid_signature` says for the same SignatureDef, read by TensorFlow's
protobuf classes from the same graph file.

Usage: python python/check_validate.py REPORT.json...   (exit 1 on any disagreement)
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tensorflow.python.tools import saved_model_utils  # noqa: E402
from tensorflow.python.saved_model import signature_def_utils  # noqa: E402


def load(graph_file):
    # TensorFlow's own reader (binary or text format, whichever the directory holds).
    sm = saved_model_utils.read_saved_model(os.path.dirname(graph_file))
    return sm


def main():
    models = []
    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as fh:
            models.extend(json.load(fh)["models"])
    checked, disagreements = 0, []
    valid_by_method = {}
    for model in models:
        if not model.get("graph_file") or model.get("tags") is None:
            continue
        sm = load(model["graph_file"])
        wanted = sorted(model["tags"])
        metas = [m for m in sm.meta_graphs if sorted(m.meta_info_def.tags) == wanted]
        if len(metas) != 1:
            disagreements.append(f"{model['path']}: no single meta graph with tags {wanted}")
            continue
        defs = metas[0].signature_def
        reported = {s["key"]: s for s in model["signatures"]}
        if set(reported) != set(defs.keys()):
            disagreements.append(
                f"{model['path']}: signatures {sorted(reported)} vs TensorFlow {sorted(defs.keys())}"
            )
        for key, sig in defs.items():
            if key not in reported:
                continue
            tf_valid = bool(signature_def_utils.is_valid_signature(sig))
            checked += 1
            if tf_valid:
                valid_by_method[sig.method_name] = valid_by_method.get(sig.method_name, 0) + 1
            if reported[key]["valid"] != tf_valid:
                disagreements.append(
                    f"{model['path']} signature '{key}': smtool valid={reported[key]['valid']}, "
                    f"TensorFlow is_valid_signature={tf_valid}"
                )
    for d in disagreements:
        print("DISAGREE", d)
    if checked == 0:
        print("no signatures checked")
        return 1
    if disagreements:
        return 1
    print(
        f"{checked} signatures: smtool and TensorFlow's is_valid_signature agree "
        f"(valid per method: {json.dumps(valid_by_method, sort_keys=True)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
