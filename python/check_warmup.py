"""Reads a TF Serving warmup file back with TensorFlow's own readers: `tf.data.TFRecordDataset`
for the records and tensorflow-serving-api's `PredictionLog` for each. Prints one JSON object per
record: its log type, model name, signature name, and the inputs (predict: dtype and shape per
input; classify/regress: the number of examples and the feature keys of the first).

Usage: check_warmup.py WARMUP_FILE
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import prediction_log_pb2  # noqa: E402


def describe(record):
    log = prediction_log_pb2.PredictionLog()
    log.ParseFromString(record)
    kind = log.WhichOneof("log_type")
    request = getattr(log, kind).request
    out = {
        "type": kind,
        "model": request.model_spec.name,
        "signature": request.model_spec.signature_name,
    }
    if kind == "predict_log":
        out["inputs"] = {
            key: {
                "dtype": tf.dtypes.as_dtype(t.dtype).name,
                "shape": tf.make_ndarray(t).shape,
            }
            for key, t in request.inputs.items()
        }
        for v in out["inputs"].values():
            v["shape"] = list(v["shape"])
    else:
        examples = request.input.example_list.examples
        out["examples"] = len(examples)
        out["features"] = sorted(examples[0].features.feature.keys()) if examples else []
    return out


def main():
    records = [r.numpy() for r in tf.data.TFRecordDataset(sys.argv[1])]
    print(json.dumps([describe(r) for r in records]))


if __name__ == "__main__":
    main()
