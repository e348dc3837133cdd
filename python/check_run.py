"""Checks `smtool run` against TensorFlow's Python API.

`check_run.py make DIR` writes the NumPy files the tests feed to `smtool run` (with NumPy's own
`np.save` / `np.savez`, including a float64 array, a Fortran-order one, a big-endian one and a
unicode one).

`check_run.py compare CASES.json` runs each case's request with `tf.saved_model.load` and the
signature's concrete function, reads the `.npy` files `smtool run --outdir` wrote with
`np.load(allow_pickle=False)`, and prints one JSON object per case: for each output TensorFlow
returns, its dtype and shape on both sides and the largest difference (or whether the strings
are equal). A case is {"model", "signature", "method", "outdir"} plus "inputs" (KEY: {"npy":
FILE} | {"npz": FILE, "name": NAME} | {"value": JSON} | {"examples": [...]} | {"image": FILE} |
{"image_examples": [{FEATURE: FILE}, ...]})
or "body" (a REST request body). Inputs are built as TF Serving builds them: examples with its
JSON-to-feature mapping, images decoded as add-classify's image features are.
"""

import base64
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

tf = None  # imported by `compare` only: `make` needs no TensorFlow


def make(out):
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "x64.npy"), np.array([1.0, 2.0, 5.0]))
    rows = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.5]], dtype=np.float32)
    np.save(os.path.join(out, "rows_fortran.npy"), np.asfortranarray(rows))
    np.save(os.path.join(out, "rows_big_endian.npy"), rows.astype(">f4"))
    np.save(os.path.join(out, "words.npy"), np.array(["the", "quick", "zebra"]))
    images = []
    for name in ["00_five.png", "05_four.png"]:
        pixels = np.asarray(Image.open(os.path.join("fixtures/digits/images", name)))
        images.append(pixels.astype(np.float32)[:, :, None] / 255.0)
    np.savez(
        os.path.join(out, "digits.npz"),
        images=np.stack(images),
        iris=np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32),
    )
    np.savez_compressed(os.path.join(out, "one.npz"), rows=rows)


def feature(value):
    """TF Serving's mapping of one REST `examples` feature value."""
    values = value if isinstance(value, list) else [value]
    if values and all(isinstance(v, str) for v in values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))
    if values and all(isinstance(v, dict) and list(v) == ["b64"] for v in values):
        raw = [base64.b64decode(v["b64"]) for v in values]
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=raw))
    if any(isinstance(v, float) for v in values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def serialized(examples):
    return tf.constant(
        [
            tf.train.Example(
                features=tf.train.Features(feature={k: feature(v) for k, v in e.items()})
            ).SerializeToString()
            for e in examples
        ]
    )


def image(path, spec):
    _, h, w, c = spec.shape
    pixels = tf.io.decode_image(
        tf.io.read_file(path), channels=c, dtype=tf.uint8, expand_animations=False
    )
    pixels = tf.image.resize(tf.cast(pixels, tf.float32)[None], (h, w), method="bilinear")
    if spec.dtype == tf.uint8:
        return tf.cast(tf.round(pixels), tf.uint8)
    return pixels / 255.0


def tensor(source, spec):
    if "npy" in source:
        array = np.load(source["npy"], allow_pickle=False)
    elif "npz" in source:
        array = np.load(source["npz"], allow_pickle=False)[source["name"]]
    elif "value" in source:
        return tf.constant(source["value"], dtype=spec.dtype)
    elif "examples" in source:
        return serialized(source["examples"])
    elif "image_examples" in source:
        # `--image FEATURE=FILE` on :classify: each file's bytes in a bytes feature.
        return serialized(
            [
                {k: {"b64": base64.b64encode(open(f, "rb").read()).decode()} for k, f in e.items()}
                for e in source["image_examples"]
            ]
        )
    elif "image" in source:
        return image(source["image"], spec)
    else:
        raise ValueError(f"unknown input {source}")
    if spec.dtype == tf.string:
        return tf.constant(array)
    return tf.constant(array.astype(spec.dtype.as_numpy_dtype))


def body_inputs(body, specs):
    if "examples" in body:
        return {"inputs": serialized(body["examples"])}
    if "instances" in body:
        rows = body["instances"]
        if len(specs) == 1:
            (key,) = specs
            return {key: tf.constant(rows, dtype=specs[key].dtype)}
        return {k: tf.constant([r[k] for r in rows], dtype=specs[k].dtype) for k in specs}
    columns = body["inputs"]
    if not isinstance(columns, dict):
        (key,) = specs
        columns = {key: columns}
    return {k: tf.constant(v, dtype=specs[k].dtype) for k, v in columns.items()}


def compare(case):
    model = tf.saved_model.load(case["model"])
    function = model.signatures[case["signature"]]
    specs = function.structured_input_signature[1]
    if "body" in case:
        feeds = body_inputs(case["body"], specs)
    else:
        feeds = {k: tensor(v, specs[k]) for k, v in case["inputs"].items()}
    expected = {k: v.numpy() for k, v in function(**feeds).items()}
    if case["method"] == "regress":
        # TF Serving's RegressionResult holds one value per example.
        expected = {k: v.reshape(-1) for k, v in expected.items()}
    result = {}
    for name, want in sorted(expected.items()):
        path = os.path.join(case["outdir"], name + ".npy")
        if not os.path.exists(path):
            result[name] = {"missing": True}
            continue
        got = np.load(path, allow_pickle=False)
        entry = {
            "shape_tf": list(want.shape),
            "shape_smtool": list(got.shape),
            "dtype_tf": str(want.dtype),
            "dtype_smtool": str(got.dtype),
        }
        if want.dtype == object:
            # TensorFlow's strings come back as bytes objects; smtool writes them as 'S'.
            entry["equal"] = want.shape == got.shape and all(
                a == b for a, b in zip(want.reshape(-1), got.reshape(-1))
            )
        else:
            same = want.shape == got.shape
            diff, scale = 0.0, 1.0
            if same and want.size:
                diff = float(np.max(np.abs(want.astype(np.float64) - got)))
                scale = max(1.0, float(np.max(np.abs(want))))
            entry["max_abs_diff"] = diff
            entry["equal"] = same and want.dtype == got.dtype and diff <= 1e-6 * scale
        result[name] = entry
    return {"name": case["name"], "outputs": result}


def main():
    if sys.argv[1] == "make":
        make(sys.argv[2])
        return
    global tf
    import tensorflow

    tf = tensorflow
    with open(sys.argv[2]) as f:
        cases = json.load(f)
    print(json.dumps([compare(c) for c in cases]))


if __name__ == "__main__":
    main()
