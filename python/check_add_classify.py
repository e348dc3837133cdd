"""Checks a SavedModel written by `smtool add-classify` with the reference TensorFlow.

    python python/check_add_classify.py --src SRC --dst DST --output output_0 --labels labels.txt \
        --mode image --images fixtures/digits/images

The signature checked is --key (default `classify`, add-classify's default), wrapping --wrapped
(default `serving_default`).

Modes (how the test inputs are made and fed as tf.Examples):
  image  every file in --images (labels.csv lists them) as encoded bytes in feature --feature,
         and each again at twice the size (the model resizes it)
  float  the same images decoded to float pixels in [0,1], as a float feature
  iris   the iris rows of --expected (fixtures/iris_tf1/expected.json) as a float feature
  multi  8 random rows for the --make-two-input-model model: float feature `size` [2] and
         int64 feature `count` [1] (its input is DT_INT32)

`--make-logits-model DIR` instead writes a small TF2 `tf.Module` export (input `x` float [-1,4],
outputs `logits` and `probabilities` [-1,3]) for testing --apply-softmax and output selection;
`--make-two-input-model DIR` one with inputs `size` float [-1,2] and `count` int32 [-1,1]
(output `probabilities` [-1,3]); `--make-uint8-image-model DIR` one whose input `x` is DT_UINT8 [-1,28,28,1] pixels (output
`probabilities` [-1,10]), for image features of uint8 inputs (check it with --pixels uint8).

What it checks, through the C API's TF_LoadSessionFromSavedModel (the C++ loader TensorFlow
Serving uses, called with ctypes), the Python TF1 session loader and `tf.saved_model.load`:
  - the new signature passes TensorFlow's `is_valid_signature` and has method classify;
  - called with serialized tf.Examples, `classes` and `scores` are [n, k], scores sorted by
    score, top-1 == argmax of the wrapped signature on the same inputs, and every score equals
    the original probability of its class within 1e-6;
  - a tf.Example without the feature is refused (no silent default);
  - every original signature gives exactly the same answers as in the unedited model.
Prints a JSON summary (with the top-1 accuracy against labels.csv in image/float mode) and
exits 1 on the first failed check.
"""

import argparse
import ctypes
import csv
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.saved_model import signature_def_utils  # noqa: E402

TOLERANCE = 1e-6
RESERVED = {"__saved_model_init_op", "__saved_model_train_op"}


def fail(message):
    print(f"check failed: {message}", file=sys.stderr)
    sys.exit(1)


def feature_of(value):
    if isinstance(value, bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
    flat = np.ravel(value)
    if np.issubdtype(flat.dtype, np.integer):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=flat.tolist()))
    return tf.train.Feature(float_list=tf.train.FloatList(value=flat.tolist()))


def example(feature, value):
    return examples_of({feature: value})


def examples_of(features):
    """One serialized tf.Example with a feature per item of `features`."""
    feats = {name: feature_of(value) for name, value in features.items()}
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


def decode(data, channels, pixels="float"):
    image = tf.io.decode_image(data, channels=channels, expand_animations=False)
    if pixels == "uint8":
        return image.numpy()
    return (tf.cast(image, tf.float32) / 255.0).numpy()


def inputs_for(args):
    """(names, model input array for the wrapped signature, tf.Examples for the new signature,
    float tf.Examples, expected label names or None)."""
    if args.mode == "multi":
        rng = np.random.default_rng(1)
        size = rng.normal(size=(8, 2)).astype(np.float32)
        count = rng.integers(0, 6, size=(8, 1)).astype(np.int32)
        examples = [examples_of({"size": s, "count": c}) for s, c in zip(size, count)]
        return [f"row {i}" for i in range(8)], {"size": size, "count": count}, examples, examples, None
    if args.mode == "iris":
        with open(args.expected, encoding="utf-8") as f:
            rows = json.load(f)["rows"]
        x = np.array([r["x"] for r in rows], dtype=np.float32)
        names = [f"row {r['row']}" for r in rows]
        float_examples = [example(args.feature, v) for v in x]
        return names, x, float_examples, float_examples, [r["label"] for r in rows]
    with open(os.path.join(args.images, "labels.csv"), encoding="utf-8") as f:
        listed = list(csv.DictReader(f))
    names, x, examples, float_examples, truth = [], [], [], [], []
    for row in listed:
        with open(os.path.join(args.images, row["file"]), "rb") as f:
            data = f.read()
        pixels = decode(data, args.channels)
        names.append(row["file"])
        truth.append(row["label"])
        x.append(decode(data, args.channels, args.pixels))
        examples.append(example(args.feature, data) if args.mode == "image" else example(args.feature, pixels))
        float_examples.append(example(args.feature, pixels))
    if args.mode == "image":
        # The same images at twice the size, PNG-encoded: the model must resize them like
        # tf.image.resize (bilinear, half-pixel centers) before scaling.
        for row in listed:
            with open(os.path.join(args.images, row["file"]), "rb") as f:
                image = tf.io.decode_image(f.read(), channels=args.channels, expand_animations=False)
            height, width = image.shape[0], image.shape[1]
            big = tf.image.resize(image, [2 * height, 2 * width], method="nearest")
            data = tf.io.encode_png(tf.cast(big, tf.uint8)).numpy()
            resized = tf.image.resize(tf.cast(big, tf.float32), [height, width], method="bilinear")
            if args.pixels == "uint8":
                fed = tf.cast(tf.round(resized), tf.uint8).numpy()
            else:
                fed = (resized / 255.0).numpy()
            names.append("2x " + row["file"])
            truth.append(row["label"])
            x.append(fed)
            examples.append(example(args.feature, data))
            float_examples.append(example(args.feature, (resized / 255.0).numpy()))
    return names, np.stack(x), examples, float_examples, truth


def feeds_for(signature, x, float_examples):
    """Feeds for an original signature: float inputs get the arrays, string inputs the float
    tf.Examples the original model parses itself."""
    feeds = {}
    for key, info in signature.inputs.items():
        if info.dtype == tf.string.as_datatype_enum:
            feeds[key] = np.array(float_examples, dtype=object)
        else:
            feeds[key] = x[key] if isinstance(x, dict) else x
    return feeds


def run_session(model_dir, tags, runs):
    """Loads `model_dir` with the TF1 loader and runs `runs`: a list of (signature key, feeds by
    input key). Returns (signature defs, results: one dict of outputs per run)."""
    results = []
    with tf.compat.v1.Session(graph=tf.Graph()) as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, tags, model_dir)
        for key, feeds in runs:
            sig = meta.signature_def[key]
            fetch = {k: v.name for k, v in sig.outputs.items()}
            feed = {sig.inputs[k].name: v for k, v in feeds.items()}
            results.append(sess.run(fetch, feed))
    return meta.signature_def, results


# TF_TString (tensorflow/core/platform/ctstring_internal.h) is a 24-byte union.
TSTRING_BYTES = 24
DT_FLOAT, DT_STRING = 1, 7


class TFOutput(ctypes.Structure):
    _fields_ = [("oper", ctypes.c_void_p), ("index", ctypes.c_int)]


def c_api():
    """TensorFlow's C API from the wheel's libtensorflow_cc.so.2, with argument types."""
    lib = ctypes.CDLL(os.path.join(os.path.dirname(tf.__file__), "libtensorflow_cc.so.2"))
    p, i, size = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
    signatures = {
        "TF_NewStatus": (p, []),
        "TF_GetCode": (i, [p]),
        "TF_Message": (ctypes.c_char_p, [p]),
        "TF_NewSessionOptions": (p, []),
        "TF_NewGraph": (p, []),
        "TF_LoadSessionFromSavedModel": (
            p, [p, p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p), i, p, p, p]),
        "TF_GraphOperationByName": (p, [p, ctypes.c_char_p]),
        "TF_AllocateTensor": (p, [i, ctypes.POINTER(ctypes.c_int64), i, size]),
        "TF_TensorData": (p, [p]),
        "TF_NumDims": (i, [p]),
        "TF_Dim": (ctypes.c_int64, [p, i]),
        "TF_TensorType": (i, [p]),
        "TF_DeleteTensor": (None, [p]),
        "TF_StringInit": (None, [p]),
        "TF_StringCopy": (None, [p, ctypes.c_char_p, size]),
        "TF_StringGetDataPointer": (p, [p]),
        "TF_StringGetSize": (size, [p]),
        "TF_SessionRun": (None, [
            p, p, ctypes.POINTER(TFOutput), ctypes.POINTER(p), i,
            ctypes.POINTER(TFOutput), ctypes.POINTER(p), i, p, i, p, p]),
        "TF_CloseSession": (None, [p, p]),
        "TF_DeleteSession": (None, [p, p]),
    }
    for name, (restype, argtypes) in signatures.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = restype, argtypes
    return lib


def c_api_run(model_dir, tags, feeds, fetches):
    """Loads `model_dir` with TF_LoadSessionFromSavedModel (the C++ loader TensorFlow Serving
    uses) and runs it. `feeds` maps tensor names to lists of bytes (DT_STRING vectors);
    `fetches` lists tensor names of DT_FLOAT or DT_STRING outputs. Returns numpy arrays."""
    lib = c_api()
    status = lib.TF_NewStatus()

    def check(what):
        if lib.TF_GetCode(status) != 0:
            fail(f"C API {what}: {lib.TF_Message(status).decode()}")

    graph = lib.TF_NewGraph()
    c_tags = (ctypes.c_char_p * len(tags))(*[t.encode() for t in tags])
    session = lib.TF_LoadSessionFromSavedModel(
        lib.TF_NewSessionOptions(), None, model_dir.encode(), c_tags, len(tags), graph, None, status)
    check("TF_LoadSessionFromSavedModel")

    def endpoint(tensor):
        op, _, index = tensor.rpartition(":")
        oper = lib.TF_GraphOperationByName(graph, op.encode())
        if not oper:
            fail(f"C API: no operation {op}")
        return TFOutput(oper, int(index))

    names = list(feeds)
    inputs = (TFOutput * len(names))(*[endpoint(n) for n in names])
    values = (ctypes.c_void_p * len(names))()
    for i, name in enumerate(names):
        strings = feeds[name]
        dims = (ctypes.c_int64 * 1)(len(strings))
        tensor = lib.TF_AllocateTensor(DT_STRING, dims, 1, TSTRING_BYTES * len(strings))
        base = lib.TF_TensorData(tensor)
        for j, data in enumerate(strings):
            lib.TF_StringInit(base + TSTRING_BYTES * j)
            lib.TF_StringCopy(base + TSTRING_BYTES * j, data, len(data))
        values[i] = tensor
    outputs = (TFOutput * len(fetches))(*[endpoint(n) for n in fetches])
    results = (ctypes.c_void_p * len(fetches))()
    lib.TF_SessionRun(session, None, inputs, values, len(names), outputs, results, len(fetches),
                      None, 0, None, status)
    check("TF_SessionRun")
    arrays = []
    for tensor in results:
        shape = [lib.TF_Dim(tensor, d) for d in range(lib.TF_NumDims(tensor))]
        count = int(np.prod(shape))
        base = lib.TF_TensorData(tensor)
        dtype = lib.TF_TensorType(tensor)
        if dtype == DT_STRING:
            flat = [ctypes.string_at(lib.TF_StringGetDataPointer(base + TSTRING_BYTES * j),
                                     lib.TF_StringGetSize(base + TSTRING_BYTES * j))
                    for j in range(count)]
            arrays.append(np.array(flat, dtype=object).reshape(shape))
        elif dtype == DT_FLOAT:
            data = (ctypes.c_float * count).from_address(base)
            arrays.append(np.ctypeslib.as_array(data).copy().reshape(shape))
        else:
            fail(f"C API: unexpected output dtype {dtype}")
        lib.TF_DeleteTensor(tensor)
    for tensor in values:
        lib.TF_DeleteTensor(tensor)
    lib.TF_CloseSession(session, status)
    lib.TF_DeleteSession(session, status)
    return arrays


def check_classify(where, classes, scores, probs, labels, k):
    n = probs.shape[0]
    if classes.shape != (n, k) or scores.shape != (n, k):
        fail(f"{where}: classes {classes.shape} / scores {scores.shape}, want ({n}, {k})")
    if np.any(np.diff(scores, axis=1) > 0):
        fail(f"{where}: scores are not sorted by score: {scores}")
    for i in range(n):
        want_top = labels[int(np.argmax(probs[i]))]
        got = [c.decode() if isinstance(c, bytes) else str(c) for c in classes[i]]
        if got[0] != want_top:
            fail(f"{where}: row {i} top-1 is {got[0]}, argmax of the original is {want_top}")
        for label, score in zip(got, scores[i]):
            original = probs[i][labels.index(label)]
            if abs(float(score) - float(original)) > TOLERANCE:
                fail(f"{where}: row {i} class {label} score {score} != original {original}")
    return [[c.decode() for c in row] for row in classes]


def same(where, a, b):
    for key in a:
        x, y = np.asarray(a[key]), np.asarray(b[key])
        if x.shape != y.shape or not np.array_equal(x, y):
            fail(f"{where}: output {key} differs from the unedited model: {x} vs {y}")


def make_logits_model(path):
    rng = np.random.default_rng(0)

    class Linear(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(rng.normal(size=(4, 3)).astype(np.float32))
            self.b = tf.Variable(rng.normal(size=(3,)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def __call__(self, x):
            logits = tf.matmul(x, self.w) + self.b
            return {"logits": logits, "probabilities": tf.nn.softmax(logits)}

    module = Linear()
    tf.saved_model.save(module, path, signatures=module.__call__)


def make_two_input_model(path):
    rng = np.random.default_rng(0)

    class TwoInputs(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(rng.normal(size=(2, 3)).astype(np.float32))
            self.v = tf.Variable(rng.normal(size=(3,)).astype(np.float32))

        @tf.function(input_signature=[
            tf.TensorSpec([None, 2], tf.float32, name="size"),
            tf.TensorSpec([None, 1], tf.int32, name="count"),
        ])
        def __call__(self, size, count):
            logits = tf.matmul(size, self.w) + tf.cast(count, tf.float32) * self.v
            return {"probabilities": tf.nn.softmax(logits)}

    module = TwoInputs()
    tf.saved_model.save(module, path, signatures=module.__call__)


def make_uint8_image_model(path):
    rng = np.random.default_rng(0)

    class Pixels(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(rng.normal(size=(28 * 28, 10)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.uint8, name="x")])
        def __call__(self, x):
            flat = tf.reshape(tf.cast(x, tf.float32) / 255.0, [-1, 28 * 28])
            return {"probabilities": tf.nn.softmax(tf.matmul(flat, self.w))}

    module = Pixels()
    tf.saved_model.save(module, path, signatures=module.__call__)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--make-logits-model":
        make_logits_model(sys.argv[2])
        return
    if len(sys.argv) == 3 and sys.argv[1] == "--make-uint8-image-model":
        make_uint8_image_model(sys.argv[2])
        return
    if len(sys.argv) == 3 and sys.argv[1] == "--make-two-input-model":
        make_two_input_model(sys.argv[2])
        return
    p = argparse.ArgumentParser()
    p.add_argument("--src", required=True)
    p.add_argument("--dst", required=True)
    p.add_argument("--key", default="classify", help="the new signature")
    p.add_argument("--wrapped", default="serving_default", help="the signature it wraps")
    p.add_argument("--output", required=True, help="the wrapped output with the probabilities")
    p.add_argument("--labels", required=True)
    p.add_argument("--mode", choices=["image", "float", "iris", "multi"], required=True)
    p.add_argument("--feature", default="x")
    p.add_argument("--images")
    p.add_argument("--expected")
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--pixels", choices=["float", "uint8"], default="float",
                   help="what the wrapped model's image input takes")
    p.add_argument("--top-k", type=int)
    p.add_argument("--tags", default="serve")
    p.add_argument("--softmax", action="store_true", help="the wrapped output holds logits")
    p.add_argument("--renamed-default", help="the key the original serving_default moved to")
    args = p.parse_args()
    tags = args.tags.split(",")
    with open(args.labels, encoding="utf-8") as f:
        labels = f.read().splitlines()
    k = args.top_k or len(labels)
    names, x, examples, float_examples, truth = inputs_for(args)
    summary = {"rows": len(names)}

    # The unedited model: every signature, and the wrapped one's probabilities.
    src_sigs, _ = run_session(args.src, tags, [])
    originals = sorted(key for key in src_sigs if key not in RESERVED)
    runs = [(key, feeds_for(src_sigs[key], x, float_examples)) for key in originals]
    _, src_results = run_session(args.src, tags, runs)
    probs = np.asarray(src_results[originals.index(args.wrapped)][args.output])
    if args.softmax:
        probs = tf.nn.softmax(probs).numpy()

    # The edited model in a TF1 session, as TensorFlow Serving loads it.
    dst_sigs, _ = run_session(args.dst, tags, [])
    new = dst_sigs.get(args.key)
    if new is None:
        fail(f"{args.dst} has no signature {args.key} (has {sorted(dst_sigs)})")
    if not signature_def_utils.is_valid_signature(new):
        fail(f"signature {args.key} is not valid for TensorFlow: {new}")
    if new.method_name != "tensorflow/serving/classify":
        fail(f"signature {args.key} has method {new.method_name}")

    def moved(key):
        return args.renamed_default if key == "serving_default" and args.renamed_default else key

    runs = [(moved(key), feeds_for(src_sigs[key], x, float_examples)) for key in originals]
    runs.append((args.key, {"inputs": np.array(examples, dtype=object)}))
    _, dst_results = run_session(args.dst, tags, runs)
    for key, a, b in zip(originals, src_results, dst_results):
        same(f"session signature {key}", a, b)
    got = dst_results[-1]
    top = check_classify("session", got["classes"], got["scores"], probs, labels, k)
    summary["session_top1"] = [row[0] for row in top]

    # The C++ SavedModel loader, as TensorFlow Serving runs it.
    classes, scores = c_api_run(
        args.dst, tags, {new.inputs["inputs"].name: examples},
        [new.outputs["classes"].name, new.outputs["scores"].name])
    top = check_classify("C API", classes, scores, probs, labels, k)
    summary["c_api_top1"] = [row[0] for row in top]

    # A tf.Example without the feature is an error, not a default.
    with tf.compat.v1.Session(graph=tf.Graph()) as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, tags, args.dst)
        sig = meta.signature_def[args.key]
        empty = tf.train.Example().SerializeToString()
        try:
            sess.run(sig.outputs["scores"].name, {sig.inputs["inputs"].name: [empty]})
            fail("a tf.Example without the feature was accepted")
        except tf.errors.InvalidArgumentError as e:
            lines = [line for line in e.message.splitlines() if line.strip()]
            summary["missing_feature_error"] = next((line for line in lines if "eature" in line), lines[-1])

    # tf.saved_model.load: the original signatures, and the new one where the loader shows it.
    loaded = tf.saved_model.load(args.dst, tags=tags)
    loaded_src = tf.saved_model.load(args.src, tags=tags)
    summary["loaded_signatures"] = sorted(loaded.signatures.keys())
    for key in originals:
        if key not in loaded_src.signatures:
            continue
        if moved(key) not in loaded.signatures:
            fail(f"tf.saved_model.load: signature {moved(key)} is missing after the edit")
        feeds = feeds_for(src_sigs[key], x, float_examples)
        a = loaded_src.signatures[key](**{k2: tf.constant(v) for k2, v in feeds.items()})
        b = loaded.signatures[moved(key)](**{k2: tf.constant(v) for k2, v in feeds.items()})
        same(f"tf.saved_model.load signature {key}", {k2: v.numpy() for k2, v in a.items()},
             {k2: v.numpy() for k2, v in b.items()})
    if args.key in loaded.signatures:
        out = loaded.signatures[args.key](inputs=tf.constant(examples))
        top = check_classify("tf.saved_model.load", out["classes"].numpy(), out["scores"].numpy(),
                             probs, labels, k)
        summary["loaded_top1"] = [row[0] for row in top]

    if truth is not None:
        summary["correct"] = sum(1 for t, g in zip(truth, summary["session_top1"]) if t == g)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
