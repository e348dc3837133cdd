"""The TensorFlow Serving gRPC client, unchanged, against a running server: the stubs of the
PyPI package `tensorflow-serving-api` over `grpcio` call GetModelMetadata, Predict (with and
without output_filter) and Classify, and every answer is compared with the same SavedModel run
by Python TensorFlow. Then ModelService.HandleReloadConfigRequest keeps only the two models
(giving iris the label `stable`), and the models passed with --removed must be unloaded.

Prints a JSON summary on stdout; exits non-zero (with the reason on stderr) on any mismatch.

Example:
    check_grpc_client.py --target 127.0.0.1:8500 \\
        --digits digits=fixtures/digits/model --image fixtures/digits/images/3.png \\
        --iris iris=fixtures/iris_tf1 --iris-row 5.1,3.5,1.4,0.2 --removed half_plus_two
"""

import argparse
import json
import os
import sys

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.python.tools import saved_model_utils
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tensorflow_serving.config import model_server_config_pb2

TIMEOUT = 60.0


class Mismatch(Exception):
    pass


def check_close(got, want, what):
    got = np.asarray(got)
    want = np.asarray(want)
    if got.shape != want.shape:
        raise Mismatch(f"{what}: shape {got.shape} != {want.shape}")
    if not np.allclose(got, want, rtol=1e-5, atol=1e-6):
        raise Mismatch(f"{what}: {got.tolist()} != {want.tolist()}")


def name_and_dir(spec, flag):
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise SystemExit(f"{flag} '{spec}' is not NAME=DIR")
    return name, path


def check_metadata(stub, name, model_dir):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = name
    request.metadata_field.append("signature_def")
    response = stub.GetModelMetadata(request, timeout=TIMEOUT)
    served = get_model_metadata_pb2.SignatureDefMap()
    if not response.metadata["signature_def"].Unpack(served):
        raise Mismatch("metadata['signature_def'] is not a SignatureDefMap")
    want = saved_model_utils.get_meta_graph_def(model_dir, "serve").signature_def
    if dict(served.signature_def) != dict(want):
        raise Mismatch(
            f"{name}: signatures {sorted(served.signature_def)} differ from the SavedModel's "
            f"{sorted(want)}"
        )
    return {"model": name, "version": response.model_spec.version.value,
            "signatures": sorted(served.signature_def)}


def load_image(path):
    image = tf.io.decode_image(tf.io.read_file(path), channels=1, expand_animations=False)
    return tf.cast(image, tf.float32).numpy() / 255.0


def check_predict(stub, name, model_dir, images):
    batch = np.stack([load_image(p) for p in images])
    signature = tf.saved_model.load(model_dir).signatures["serving_default"]
    want = {k: v.numpy() for k, v in signature(x=tf.constant(batch)).items()}
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = "serving_default"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(batch))
    response = stub.Predict(request, timeout=TIMEOUT)
    if sorted(response.outputs) != sorted(want):
        raise Mismatch(f"predict outputs {sorted(response.outputs)} != {sorted(want)}")
    for key, value in want.items():
        check_close(tf.make_ndarray(response.outputs[key]), value, f"predict {key}")
    # output_filter: only the named outputs come back.
    first = sorted(want)[0]
    request.output_filter.append(first)
    filtered = stub.Predict(request, timeout=TIMEOUT)
    if list(filtered.outputs) != [first]:
        raise Mismatch(f"output_filter [{first}] returned {sorted(filtered.outputs)}")
    check_close(tf.make_ndarray(filtered.outputs[first]), want[first], "filtered predict")
    # An unknown output alias is TF Serving's INVALID_ARGUMENT.
    request.output_filter.append("no_such_output")
    try:
        stub.Predict(request, timeout=TIMEOUT)
        raise Mismatch("an unknown output_filter alias was accepted")
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.INVALID_ARGUMENT:
            raise Mismatch(f"unknown output_filter alias gave {e.code()}: {e.details()}")
    top = np.argmax(want[first], axis=1).tolist()
    return {"model": name, "images": len(images), "argmax": top}


def check_classify(stub, name, model_dir, rows):
    examples = [
        tf.train.Example(features=tf.train.Features(feature={
            "x": tf.train.Feature(float_list=tf.train.FloatList(value=row))
        }))
        for row in rows
    ]
    # The same signature run by TensorFlow's own (TF1) loader.
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], model_dir)
        sig = meta.signature_def["serving_default"]
        fetches = {k: sig.outputs[k].name for k in ("classes", "scores") if k in sig.outputs}
        want = sess.run(fetches, {
            sig.inputs["inputs"].name: [e.SerializeToString() for e in examples]
        })
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = "serving_default"
    request.input.example_list.examples.extend(examples)
    response = stub.Classify(request, timeout=TIMEOUT)
    got = response.result.classifications
    if len(got) != len(rows):
        raise Mismatch(f"classify: {len(got)} results for {len(rows)} examples")
    answer = []
    for i, classification in enumerate(got):
        labels = [c.label for c in classification.classes]
        scores = [c.score for c in classification.classes]
        if "classes" in want:
            expected = [c.decode() for c in want["classes"][i]]
            if labels != expected:
                raise Mismatch(f"classify row {i}: labels {labels} != {expected}")
        if "scores" in want:
            check_close(scores, want["scores"][i], f"classify row {i} scores")
        answer.append(list(zip(labels, scores)))
    return {"model": name, "results": answer}


def model_states(models, name, label=None):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    if label:
        request.model_spec.version_label = label
    response = models.GetModelStatus(request, timeout=TIMEOUT)
    return {
        v.version: get_model_status_pb2.ModelVersionStatus.State.Name(v.state)
        for v in response.model_version_status
    }


def check_reload(channel, stub, kept, iris, removed, row):
    """Reloads the config with only `kept` (name, dir) models, iris labelled `stable`."""
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    config = model_server_config_pb2.ModelServerConfig()
    for name, model_dir in kept:
        entry = config.model_config_list.config.add()
        entry.name = name
        entry.base_path = os.path.abspath(model_dir)
        entry.model_platform = "tensorflow"
        if name == iris:
            entry.version_labels["stable"] = 1
    request = model_management_pb2.ReloadConfigRequest(config=config)
    response = models.HandleReloadConfigRequest(request, timeout=TIMEOUT)
    if response.status.error_code != 0:
        raise Mismatch(f"reload answered {response.status}")
    if model_states(models, iris, "stable") != {1: "AVAILABLE"}:
        raise Mismatch(f"iris label stable: {model_states(models, iris, 'stable')}")
    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.name = iris
    classify.model_spec.version_label = "stable"
    classify.input.example_list.examples.add().features.feature["x"].float_list.value.extend(row)
    if len(stub.Classify(classify, timeout=TIMEOUT).result.classifications) != 1:
        raise Mismatch("classify by label gave no result")
    for name in removed:
        states = model_states(models, name)
        if set(states.values()) != {"END"}:
            raise Mismatch(f"{name} is still loaded after the reload: {states}")
    # TF Serving's error for a model listed twice.
    entry = config.model_config_list.config.add()
    entry.CopyFrom(config.model_config_list.config[0])
    try:
        models.HandleReloadConfigRequest(
            model_management_pb2.ReloadConfigRequest(config=config), timeout=TIMEOUT)
        raise Mismatch("a config listing a model twice was accepted")
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.INVALID_ARGUMENT:
            raise Mismatch(f"a model listed twice gave {e.code()}: {e.details()}")
        duplicate = e.details()
    return {"status": response.status.error_code, "removed": sorted(removed),
            "duplicate_error": duplicate}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="gRPC address, e.g. 127.0.0.1:8500")
    parser.add_argument("--digits", required=True, metavar="NAME=DIR",
                        help="served image model and its SavedModel directory")
    parser.add_argument("--image", action="append", required=True,
                        help="an image for --digits (repeatable)")
    parser.add_argument("--iris", required=True, metavar="NAME=DIR",
                        help="served tf.Example classifier and its SavedModel directory")
    parser.add_argument("--iris-row", action="append", required=True, metavar="V1,V2,V3,V4",
                        help="float feature x of one example (repeatable)")
    parser.add_argument("--removed", action="append", default=[], metavar="NAME",
                        help="a served model the reload must unload (repeatable)")
    args = parser.parse_args()
    digits, digits_dir = name_and_dir(args.digits, "--digits")
    iris, iris_dir = name_and_dir(args.iris, "--iris")
    rows = [[float(v) for v in row.split(",")] for row in args.iris_row]

    channel = grpc.insecure_channel(args.target)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    try:
        summary = {
            "metadata": [check_metadata(stub, digits, digits_dir),
                         check_metadata(stub, iris, iris_dir)],
            "predict": check_predict(stub, digits, digits_dir, args.image),
            "classify": check_classify(stub, iris, iris_dir, rows),
            "reload": check_reload(channel, stub, [(digits, digits_dir), (iris, iris_dir)],
                                   iris, args.removed, rows[0]),
        }
    except Mismatch as e:
        print(f"mismatch: {e}", file=sys.stderr)
        return 1
    except grpc.RpcError as e:
        print(f"gRPC error {e.code()}: {e.details()}", file=sys.stderr)
        return 1
    json.dump(summary, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
