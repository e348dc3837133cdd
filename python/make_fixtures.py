#!/usr/bin/env python3
"""Make smtool's test fixtures (SavedModels and friends) with real TensorFlow.

Rerun from the repository root with:

    python3 -m venv .venv && .venv/bin/pip install -r python/requirements.txt \
        && .venv/bin/python python/make_fixtures.py

(`--out DIR` writes somewhere other than `fixtures/`.)  The script deletes
and rewrites every directory it owns below the output directory (listed in
OWNED below) and `README.md`; anything else there is left alone.  Seeds are
fixed (numpy, TensorFlow, Keras) and op determinism is enabled, so reruns
with the same pinned packages give the same weights and numbers.  Files are
byte-identical across reruns except fingerprint.pb (it holds a random UUID)
and digits/model/ (Keras lists the variables from an identity-keyed set, so
their order in saved_model.pb and the checkpoint can change; values do not).

Fixtures:

  digits/             Keras 3 image classifier (28x28x1 grayscale, softmax over
                      10 digits) exported with `model.export()` (TF2 SavedModel),
                      trained a few epochs on scikit-learn's bundled 8x8 digits
                      upscaled to 28x28; plus labels.txt, real held-out test
                      images (PNG and JPEG) with labels.csv, and expected.json
                      with the probabilities TensorFlow gives for those files.
  iris_tf1/           TF1 graph-mode model exported with SavedModelBuilder the
                      classic TF Serving way: serialized tf.Example input,
                      classify / regress / predict signatures, a label lookup
                      table initialised by a main op; plus expected.json.
  vocab_assets/       TF2 tf.Module with a StaticHashTable read from an asset
                      file (assets/vocab.txt), so it has an __saved_model_init_op
                      and asset_file_defs; plus assets.extra/
                      tf_serving_warmup_requests (TFRecord of PredictionLogs).
  half_plus_two/1,2/  TF Serving model base path with two versions of
                      y = a*x + b (v1: a=0.5 b=2, v2: a=0.5 b=3).
  half_plus_two_pbtxt/ version 1 above stored as text saved_model.pbtxt.
  variable_length/    TF2 tf.Module whose input has two free dimensions
                      (sequences of any length), for batching with
                      pad_variable_length_inputs.
  broken/...          deliberately broken or suspicious models for the
                      validator (see fixtures/README.md for what is wrong).

Every non-broken model is loaded back with TensorFlow before the script ends.
"""

import argparse
import base64
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from google.protobuf import text_format  # noqa: E402
from PIL import Image  # noqa: E402
from sklearn.datasets import load_digits, load_iris  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from tensorflow.core.protobuf import saved_model_pb2  # noqa: E402
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2  # noqa: E402

SEED = 1234

DIGIT_NAMES = ["zero", "one", "two", "three", "four",
               "five", "six", "seven", "eight", "nine"]
IRIS_NAMES = ["setosa", "versicolor", "virginica"]
VOCAB = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog"]

OWNED = [
    "digits",
    "iris_tf1",
    "vocab_assets",
    "half_plus_two",
    "half_plus_two_pbtxt",
    "variable_length",
    "broken/classify_float_input",
    "broken/missing_tensor",
    "broken/regress_two_outputs",
    "broken/truncated",
    "broken/no_saved_model",
    "broken/file_ops",
]

v1 = tf.compat.v1


def seed_everything():
    np.random.seed(SEED)
    tf.random.set_seed(SEED)
    keras.utils.set_random_seed(SEED)


def write_json(path, obj):
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def f32list(a):
    """float32 values as plain Python floats (exact float32 values)."""
    return [float(v) for v in np.asarray(a, dtype=np.float32).reshape(-1)]


# ---------------------------------------------------------------------------
# 1. digits: Keras 3 model.export()
# ---------------------------------------------------------------------------

def digits_to_28x28_uint8(images8):
    """8x8 digits (0..16, ink high) -> 28x28 uint8 (0..255, white on black)."""
    x = images8.astype(np.float32) * (255.0 / 16.0)
    x = tf.image.resize(x[..., None], (28, 28), method="bilinear").numpy()
    return np.clip(np.round(x), 0, 255).astype(np.uint8)  # (n, 28, 28, 1)


def make_digits(out):
    seed_everything()
    root = out / "digits"
    data = load_digits()
    imgs = digits_to_28x28_uint8(data.images)
    labels = data.target.astype(np.int64)
    idx = np.arange(len(labels))
    tr_idx, te_idx = train_test_split(
        idx, test_size=0.25, random_state=SEED, stratify=labels)
    x_tr = imgs[tr_idx].astype(np.float32) / 255.0
    x_te = imgs[te_idx].astype(np.float32) / 255.0
    y_tr, y_te = labels[tr_idx], labels[te_idx]

    inp = keras.Input(shape=(28, 28, 1), name="x")
    h = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inp)
    h = keras.layers.MaxPooling2D(2, name="pool")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    outp = keras.layers.Dense(10, activation="softmax", name="probs")(h)
    model = keras.Model(inp, outp, name="digits")
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_tr, y_tr, epochs=8, batch_size=32, shuffle=True, verbose=0)
    _, acc = model.evaluate(x_te, y_te, verbose=0)
    print(f"digits: test accuracy {acc:.4f} on {len(y_te)} held-out images")
    if acc <= 0.90:
        raise SystemExit(f"digits accuracy too low: {acc}")

    model_dir = root / "model"
    model.export(str(model_dir), format="tf_saved_model", verbose=True)

    (root / "labels.txt").write_text("\n".join(DIGIT_NAMES) + "\n")

    # Held-out test images: the first test image of each class (in test-set
    # order) as PNG, then the next three unused test images as JPEG.
    img_dir = root / "images"
    img_dir.mkdir(parents=True)
    chosen, seen = [], set()
    for j, c in enumerate(y_te):
        if int(c) not in seen:
            seen.add(int(c))
            chosen.append((j, "png"))
    used = {j for j, _ in chosen}
    extra = [j for j in range(len(y_te)) if j not in used][:3]
    chosen += [(j, "jpg") for j in extra]

    files = []
    for n, (j, ext) in enumerate(chosen):
        name = f"{n:02d}_{DIGIT_NAMES[int(y_te[j])]}.{ext}"
        pil = Image.fromarray(imgs[te_idx[j]][:, :, 0], mode="L")
        if ext == "png":
            pil.save(img_dir / name, format="PNG")
        else:
            pil.save(img_dir / name, format="JPEG", quality=90)
        files.append((name, int(y_te[j])))
    with open(img_dir / "labels.csv", "w", newline="\n") as f:
        f.write("file,label\n")
        for name, c in files:
            f.write(f"{name},{DIGIT_NAMES[c]}\n")

    # Expected outputs from the exported SavedModel itself, on the decoded files.
    loaded = tf.saved_model.load(str(model_dir))
    sig_keys = sorted(loaded.signatures.keys())
    fn = loaded.signatures["serving_default"]
    in_keys = list(fn.structured_input_signature[1].keys())
    out_keys = list(fn.structured_outputs.keys())
    assert in_keys == ["x"], in_keys
    assert len(out_keys) == 1, out_keys
    out_key = out_keys[0]
    print(f"digits: signatures {sig_keys}; serving_default inputs {in_keys} "
          f"outputs {out_keys}")

    records = []
    for name, c in files:
        raw = tf.io.read_file(str(img_dir / name))
        pix = tf.io.decode_image(raw, channels=1, expand_animations=False)
        if name.endswith(".png"):
            j = [k for k, (nm, _) in enumerate(files) if nm == name][0]
            assert np.array_equal(pix.numpy(), imgs[te_idx[chosen[j][0]]])
        x = tf.cast(pix, tf.float32)[None] / 255.0
        p = fn(x=x)[out_key].numpy()[0]
        p2 = loaded.serve(x).numpy()[0]
        np.testing.assert_allclose(p, p2, rtol=0, atol=1e-6)
        pred = int(np.argmax(p))
        records.append({
            "file": name,
            "label": DIGIT_NAMES[c],
            "label_index": c,
            "predicted_index": pred,
            "predicted_label": DIGIT_NAMES[pred],
            "probabilities": f32list(p),
        })
    correct = sum(r["label_index"] == r["predicted_index"] for r in records)
    print(f"digits: {correct}/{len(records)} fixture images predicted correctly")
    write_json(root / "expected.json", {
        "model_dir": "model",
        "signatures": sig_keys,
        "signature": "serving_default",
        "input_key": "x",
        "input_shape": [-1, 28, 28, 1],
        "output_key": out_key,
        "labels_file": "labels.txt",
        "images_dir": "images",
        "preprocessing": "decode image as 1-channel uint8, cast to float32, "
                         "divide by 255, add batch dimension",
        "test_accuracy": round(float(acc), 4),
        "images": records,
    })


# ---------------------------------------------------------------------------
# 2. iris_tf1: classic TF1 SavedModelBuilder export
# ---------------------------------------------------------------------------

def iris_example(features):
    return tf.train.Example(features=tf.train.Features(feature={
        "x": tf.train.Feature(float_list=tf.train.FloatList(
            value=[float(v) for v in features]))
    })).SerializeToString()


class _FixedNameKeyValueInitializer(v1.lookup.KeyValueTensorInitializer):
    """StaticHashTable names its resource "hash_table_<random uuid>" unless
    the initializer supplies a shared name; give it a fixed one so reruns
    write the same saved_model.pb."""

    @property
    def _shared_name(self):
        return "hash_table_iris_label_names"


def make_iris_tf1(out):
    seed_everything()
    export_dir = out / "iris_tf1"
    iris = load_iris()
    data = iris.data.astype(np.float32)
    target = iris.target.astype(np.int64)
    mean = data.mean(axis=0)
    std = data.std(axis=0)

    g = tf.Graph()
    with g.as_default():
        v1.set_random_seed(SEED)
        serialized = v1.placeholder(tf.string, shape=[None], name="tf_example")
        feature_configs = {"x": tf.io.FixedLenFeature(shape=[4], dtype=tf.float32)}
        parsed = v1.io.parse_example(serialized, feature_configs)
        x = tf.identity(parsed["x"], name="x")  # as in mnist_saved_model.py
        y_ = v1.placeholder(tf.int64, shape=[None], name="y_")
        xn = (x - tf.constant(mean)) / tf.constant(std)
        w = v1.get_variable("weights", shape=[4, 3], dtype=tf.float32,
                            initializer=v1.truncated_normal_initializer(
                                stddev=0.1, seed=SEED),
                            use_resource=False)
        b = v1.get_variable("bias", shape=[3], dtype=tf.float32,
                            initializer=v1.zeros_initializer(),
                            use_resource=False)
        logits = tf.matmul(xn, w) + b
        probs = tf.nn.softmax(logits, name="probabilities")
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y_, logits=logits))
        train_step = v1.train.GradientDescentOptimizer(0.5).minimize(loss)
        correct = tf.equal(tf.argmax(probs, 1), y_)
        accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))

        values, indices = tf.nn.top_k(probs, k=3)
        # What index_to_string_table_from_tensor did (not exported any more).
        table = v1.lookup.StaticHashTable(
            _FixedNameKeyValueInitializer(
                keys=tf.range(len(IRIS_NAMES), dtype=tf.int64),
                values=tf.constant(IRIS_NAMES)),
            default_value="UNKNOWN", name="index_to_string")
        classes = table.lookup(tf.cast(indices, tf.int64), name="classes")
        scores = tf.identity(values, name="scores")
        p_virginica = tf.identity(probs[:, 2:3], name="p_virginica")

        sess = v1.Session(graph=g)
        sess.run(v1.global_variables_initializer())
        for _ in range(300):
            sess.run(train_step, feed_dict={x: data, y_: target})
        acc = sess.run(accuracy, feed_dict={x: data, y_: target})
        print(f"iris_tf1: training accuracy {acc:.4f}")

        sdu = v1.saved_model.signature_def_utils
        classify_sig = sdu.classification_signature_def(
            examples=serialized, classes=classes, scores=scores)
        regress_sig = sdu.regression_signature_def(
            examples=serialized, predictions=p_virginica)
        predict_sig = sdu.predict_signature_def(
            inputs={"x": x}, outputs={"probabilities": probs})

        builder = v1.saved_model.builder.SavedModelBuilder(str(export_dir))
        builder.add_meta_graph_and_variables(
            sess, [v1.saved_model.tag_constants.SERVING],
            signature_def_map={
                "serving_default": classify_sig,
                "classify": classify_sig,
                "regress": regress_sig,
                "predict": predict_sig,
            },
            main_op=v1.tables_initializer(),
            strip_default_attrs=True)
        builder.save()
        sess.close()

    # Expected outputs: load with the TF1 loader and feed serialized examples.
    rows = [0, 1, 50, 70, 83, 100, 133, 149]
    examples = [iris_example(data[i]) for i in rows]
    g2 = tf.Graph()
    with g2.as_default(), v1.Session(graph=g2) as s:
        mg = v1.saved_model.loader.load(s, ["serve"], str(export_dir))
        sigs = mg.signature_def
        print(f"iris_tf1: signatures {sorted(sigs.keys())}")
        c = sigs["serving_default"]
        cls, sc = s.run([c.outputs["classes"].name, c.outputs["scores"].name],
                        {c.inputs["inputs"].name: examples})
        r = sigs["regress"]
        reg = s.run(r.outputs["outputs"].name, {r.inputs["inputs"].name: examples})
        p = sigs["predict"]
        pr = s.run(p.outputs["probabilities"].name, {p.inputs["x"].name: data[rows]})
    out_rows = []
    for k, i in enumerate(rows):
        out_rows.append({
            "row": i,
            "x": f32list(data[i]),
            "label": IRIS_NAMES[int(target[i])],
            "serialized_example_b64": base64.b64encode(examples[k]).decode(),
            "classes": [v.decode() for v in cls[k]],
            "scores": f32list(sc[k]),
            "regress_outputs": f32list(reg[k]),
            "probabilities": f32list(pr[k]),
        })
    write_json(export_dir / "expected.json", {
        "tags": ["serve"],
        "feature": {"name": "x", "type": "float", "shape": [4]},
        "label_names": IRIS_NAMES,
        "regress_output": "probability of virginica (class 2), shape [-1, 1]",
        "training_accuracy": round(float(acc), 4),
        "rows": out_rows,
    })


# ---------------------------------------------------------------------------
# 3. vocab_assets: TF2 module with an asset-backed lookup table + warmup
# ---------------------------------------------------------------------------

class VocabModule(tf.Module):
    def __init__(self, vocab_path):
        super().__init__()
        init = tf.lookup.TextFileInitializer(
            vocab_path,
            key_dtype=tf.string, key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
            value_dtype=tf.int64, value_index=tf.lookup.TextFileIndex.LINE_NUMBER)
        self.table = tf.lookup.StaticHashTable(init, default_value=-1)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="words")])
    def serve(self, words):
        return {"ids": self.table.lookup(words)}


def make_vocab_assets(out):
    seed_everything()
    export_dir = out / "vocab_assets"
    # The table's shared_name embeds the vocabulary path given here, so
    # create the module from a relative "vocab.txt" inside a temporary
    # working directory (no machine paths end up in saved_model.pb).
    export_abs = export_dir.resolve()
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            os.chdir(tmp)
            Path("vocab.txt").write_text("\n".join(VOCAB) + "\n")
            m = VocabModule("vocab.txt")
            tf.saved_model.save(m, str(export_abs),
                                signatures={"serving_default": m.serve})
        finally:
            os.chdir(cwd)
    # Warmup requests (read by TF Serving at load time).
    extra = export_dir / "assets.extra"
    extra.mkdir()
    batches = [["the", "quick", "brown", "fox"], ["lazy", "dog"], ["unknown"]]
    with tf.io.TFRecordWriter(str(extra / "tf_serving_warmup_requests")) as w:
        for words in batches:
            req = predict_pb2.PredictRequest()
            req.model_spec.name = "vocab"
            req.model_spec.signature_name = "serving_default"
            req.inputs["words"].CopyFrom(tf.make_tensor_proto(words, dtype=tf.string))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=req))
            w.write(log.SerializeToString())
    loaded = tf.saved_model.load(str(export_dir))
    ids = loaded.signatures["serving_default"](
        words=tf.constant(["fox", "the", "cat"]))["ids"].numpy().tolist()
    assert ids == [3, 0, -1], ids
    print(f"vocab_assets: ids for fox,the,cat = {ids}")


# ---------------------------------------------------------------------------
# 4/5. half_plus_two versions and the pbtxt variant
# ---------------------------------------------------------------------------

class AffineModule(tf.Module):
    def __init__(self, a, b):
        super().__init__()
        self.a = tf.Variable(a, dtype=tf.float32, name="a")
        self.b = tf.Variable(b, dtype=tf.float32, name="b")

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def serve(self, x):
        return {"y": self.a * x + self.b}


def save_affine(path, a, b):
    m = AffineModule(a, b)
    tf.saved_model.save(m, str(path), signatures={"serving_default": m.serve})


def check_affine(path, a, b):
    loaded = tf.saved_model.load(str(path))
    y = loaded.signatures["serving_default"](x=tf.constant([1.0, 2.0, 5.0]))["y"]
    np.testing.assert_allclose(y.numpy(), [a * 1 + b, a * 2 + b, a * 5 + b])


def make_half_plus_two(out):
    seed_everything()
    base = out / "half_plus_two"
    for version, b in [(1, 2.0), (2, 3.0)]:
        save_affine(base / str(version), 0.5, b)
        check_affine(base / str(version), 0.5, b)
    print("half_plus_two: versions 1 and 2 load and compute y = 0.5x+2 / 0.5x+3")


def make_half_plus_two_pbtxt(out):
    seed_everything()
    d = out / "half_plus_two_pbtxt"
    save_affine(d, 0.5, 2.0)
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((d / "saved_model.pb").read_bytes())
    (d / "saved_model.pbtxt").write_text(text_format.MessageToString(sm))
    (d / "saved_model.pb").unlink()
    # The fingerprint describes the binary saved_model.pb; drop it.
    (d / "fingerprint.pb").unlink(missing_ok=True)
    check_affine(d, 0.5, 2.0)
    print("half_plus_two_pbtxt: loads from saved_model.pbtxt")


# ---------------------------------------------------------------------------
# 6. variable_length: an input with two free dimensions
# ---------------------------------------------------------------------------

class VariableLength(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="x")])
    def serve(self, x):
        return {"doubled": 2.0 * x, "row_sum": tf.reduce_sum(x, axis=1)}


def make_variable_length(out):
    seed_everything()
    d = out / "variable_length"
    m = VariableLength()
    tf.saved_model.save(m, str(d), signatures={"serving_default": m.serve})
    sig = tf.saved_model.load(str(d)).signatures["serving_default"]
    for rows in ([[1.0, 2.0]], [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]):
        got = sig(x=tf.constant(rows))
        np.testing.assert_allclose(got["doubled"].numpy(), 2 * np.array(rows))
        np.testing.assert_allclose(got["row_sum"].numpy(), np.sum(rows, axis=1))
    print("variable_length: x [-1, -1] -> doubled [-1, -1], row_sum [-1]")


# ---------------------------------------------------------------------------
# 7. broken fixtures
# ---------------------------------------------------------------------------

def make_classify_float_input(out):
    export_dir = out / "broken" / "classify_float_input"
    g = tf.Graph()
    with g.as_default():
        v1.set_random_seed(SEED)
        inputs = v1.placeholder(tf.float32, shape=[None, 4], name="inputs")
        w = v1.get_variable("weights", shape=[4, 3],
                            initializer=v1.truncated_normal_initializer(seed=SEED))
        scores = tf.nn.softmax(tf.matmul(inputs, w), name="scores")
        u = v1.saved_model.utils
        sig = v1.saved_model.signature_def_utils.build_signature_def(
            inputs={"inputs": u.build_tensor_info(inputs)},
            outputs={"scores": u.build_tensor_info(scores)},
            method_name=v1.saved_model.signature_constants.CLASSIFY_METHOD_NAME)
    save_tf1_default(g, export_dir, sig)


def save_tf1_default(g, export_dir, sig):
    """Initialises the variables of graph `g` and exports it with SavedModelBuilder, tag-set
    `serve`, with `sig` as its only signature, `serving_default`."""
    with v1.Session(graph=g) as sess:
        sess.run(v1.global_variables_initializer())
        builder = v1.saved_model.builder.SavedModelBuilder(str(export_dir))
        builder.add_meta_graph_and_variables(
            sess, ["serve"], signature_def_map={"serving_default": sig},
            strip_default_attrs=True)
        builder.save()


def make_regress_two_outputs(out):
    export_dir = out / "broken" / "regress_two_outputs"
    g = tf.Graph()
    with g.as_default():
        inputs = v1.placeholder(tf.string, shape=[None], name="tf_example")
        parsed = v1.io.parse_example(
            inputs, {"x": tf.io.FixedLenFeature(shape=[1], dtype=tf.float32)})
        x = parsed["x"]
        a = v1.get_variable("a", initializer=tf.constant(0.5))
        b = v1.get_variable("b", initializer=tf.constant(2.0))
        outputs = tf.identity(a * x + b, name="outputs")
        extra = tf.identity(2.0 * x, name="extra")
        u = v1.saved_model.utils
        sig = v1.saved_model.signature_def_utils.build_signature_def(
            inputs={"inputs": u.build_tensor_info(inputs)},
            outputs={"outputs": u.build_tensor_info(outputs),
                     "extra": u.build_tensor_info(extra)},
            method_name=v1.saved_model.signature_constants.REGRESS_METHOD_NAME)
    save_tf1_default(g, export_dir, sig)


def make_missing_tensor(out):
    d = out / "broken" / "missing_tensor"
    save_affine(d, 0.5, 2.0)
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((d / "saved_model.pb").read_bytes())
    sig = sm.meta_graphs[0].signature_def["serving_default"]
    sig.outputs["y"].name = "does_not_exist:0"
    (d / "saved_model.pb").write_bytes(sm.SerializeToString(deterministic=True))
    (d / "fingerprint.pb").unlink(missing_ok=True)


def make_truncated(out):
    d = out / "broken" / "truncated"
    shutil.copytree(out / "half_plus_two" / "1", d)
    pb = d / "saved_model.pb"
    data = pb.read_bytes()
    pb.write_bytes(data[: len(data) // 2])


def make_no_saved_model(out):
    d = out / "broken" / "no_saved_model"
    d.mkdir(parents=True)
    shutil.copytree(out / "half_plus_two" / "1" / "variables", d / "variables")


class FileOpsModule(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="path")])
    def serve(self, path):
        contents = tf.io.read_file(path)
        tf.io.write_file(tf.strings.join([path, ".copy"]), contents)
        return {"contents": contents}


def make_file_ops(out):
    d = out / "broken" / "file_ops"
    m = FileOpsModule()
    tf.saved_model.save(m, str(d), signatures={"serving_default": m.serve})
    tf.saved_model.load(str(d))  # loads fine; it is "broken" by policy only


# ---------------------------------------------------------------------------

README = """\
# Test fixtures

Generated by `python/make_fixtures.py` with TensorFlow 2.21 (Keras 3); do not
edit by hand. To regenerate, from the repository root:

    python3 -m venv .venv && .venv/bin/pip install -r python/requirements.txt \\
        && .venv/bin/python python/make_fixtures.py

The script seeds numpy/TensorFlow/Keras and enables op determinism. With the
same pinned packages on the same platform a rerun reproduces the same weights
and `expected.json` numbers, and the same bytes except in `fingerprint.pb`
files (they hold a random UUID) and `digits/model/` (Keras collects the
variables in an identity-keyed set, so their order in `saved_model.pb` and the
checkpoint can change between runs; the values do not). Other TensorFlow
versions or CPUs may change trained weights and numbers slightly.

## Working models

| path | what |
|------|------|
| `digits/model/` | Keras 3 `model.export()` (TF2 SavedModel, tag `serve`). Conv2D(8)+MaxPool+Flatten+Dense(10, softmax) trained 8 epochs on scikit-learn's bundled 8x8 digits, upscaled (bilinear) to 28x28 grayscale, float32 in [0,1]. Signatures `serve` and `serving_default` (both `tensorflow/serving/predict`, plus an empty `__saved_model_init_op`), input `x` DT_FLOAT [-1,28,28,1], output `output_0` DT_FLOAT [-1,10] softmax probabilities (keys also recorded in `digits/expected.json`). |
| `digits/labels.txt` | class names in index order (`zero` .. `nine`). |
| `digits/images/` | real held-out test images, 28x28 8-bit grayscale, white digit on black (same transform as training, before /255): 10 PNGs (one per class) and 3 JPEGs (quality 90); `labels.csv` has `file,label` (true label). |
| `digits/expected.json` | probabilities from the exported SavedModel (`tf.saved_model.load`, `serving_default`) for each image file decoded with TensorFlow (1 channel, float32 / 255). JPEG decoding may differ slightly between decoders; PNG decoding is exact. Also the test accuracy. |
| `iris_tf1/` | TF1 graph-mode model (tf.compat.v1) exported with `SavedModelBuilder`, the classic TF Serving recipe. Input placeholder `tf_example` DT_STRING [-1] of serialized `tf.Example` with float feature `x` [4] (iris measurements), parsed by `parse_example`; softmax regression (ref variables, so there is a `variables/` dir) trained 300 GD steps on scikit-learn's `load_iris` (the training ops stay in the graph, as in the classic recipe; no `fingerprint.pb`, the TF1 builder does not write one); label names via a `tf.compat.v1.lookup.StaticHashTable` index->string (what `index_to_string_table_from_tensor` built; that helper is no longer exported), initialised by `main_op=tables_initializer()`. Signatures: `serving_default` and `classify` (classify: input `inputs`, outputs `classes` DT_STRING [-1,3] top-3 label names and `scores` DT_FLOAT [-1,3]), `regress` (input `inputs`, output `outputs` DT_FLOAT [-1,1] = P(virginica)), `predict` (input `x` DT_FLOAT [-1,4], output `probabilities` DT_FLOAT [-1,3]). |
| `iris_tf1/expected.json` | some iris rows (row 70, a versicolor, is misclassified as virginica) (features, base64 serialized tf.Example) with classes/scores/regression/probabilities from the TF1 loader. |
| `vocab_assets/` | TF2 `tf.Module` with `StaticHashTable(TextFileInitializer(vocab.txt))` (default -1); the vocabulary is the asset `assets/vocab.txt`, so the model has `asset_file_def`s and a `__saved_model_init_op` signature. `serving_default`: input `words` DT_STRING [-1], output `ids` DT_INT64 [-1] (line number of the word, -1 if unknown). `assets.extra/tf_serving_warmup_requests` is a TFRecord of 3 `PredictionLog`s with `predict_log.request` (model `vocab`, signature `serving_default`, input `words`). |
| `half_plus_two/1/`, `half_plus_two/2/` | TF Serving base path with two versions: TF2 `tf.Module`, variables `a`, `b`, `serving_default` input `x` DT_FLOAT [-1], output `y` DT_FLOAT [-1] = a*x+b; v1: a=0.5 b=2, v2: a=0.5 b=3. |
| `half_plus_two_pbtxt/` | version 1 of half_plus_two stored as text `saved_model.pbtxt` (protobuf text format of the parsed `saved_model.pb`) plus its `variables/`; no `fingerprint.pb`. TensorFlow loads it. |
| `variable_length/` | TF2 `tf.Module` without variables whose input has two free dimensions (rows of any length, for batching with `pad_variable_length_inputs`): `serving_default` input `x` DT_FLOAT [-1,-1], outputs `doubled` DT_FLOAT [-1,-1] = 2*x and `row_sum` DT_FLOAT [-1] = the sum of each row. |

## Broken models (`broken/`)

| path | what is wrong |
|------|---------------|
| `broken/classify_float_input/` | TF1 model (resource variables) whose `serving_default` has method `tensorflow/serving/classify` but its input `inputs` is a DT_FLOAT [-1,4] placeholder, not DT_STRING serialized examples (output `scores` DT_FLOAT [-1,3]). Built by hand with `build_tensor_info`; SavedModelBuilder accepts it. |
| `broken/missing_tensor/` | half_plus_two v1 (TF2) whose `serving_default` output `y` was edited in `saved_model.pb` to name `does_not_exist:0`, a tensor not in the graph; the stale `fingerprint.pb` was deleted. |
| `broken/regress_two_outputs/` | TF1 model, method `tensorflow/serving/regress`, input `inputs` DT_STRING [-1], but two float outputs `outputs` and `extra` (a regress signature must have exactly one output, `outputs`). |
| `broken/truncated/` | copy of `half_plus_two/1` whose `saved_model.pb` is cut to half its length (does not parse). |
| `broken/no_saved_model/` | only a `variables/` directory (copied from half_plus_two v1); no `saved_model.pb` or `saved_model.pbtxt`. |
| `broken/file_ops/` | valid TF2 model, but its `serving_default` (input `path` DT_STRING scalar, output `contents` DT_STRING) uses `ReadFile` and `WriteFile` ops inside the function library: a model that reads/writes the server's file system. |
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="fixtures",
                    help="output directory (default: fixtures)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for rel in OWNED:
        shutil.rmtree(out / rel, ignore_errors=True)
    (out / "broken").mkdir(exist_ok=True)
    tf.config.experimental.enable_op_determinism()

    make_digits(out)
    make_iris_tf1(out)
    make_vocab_assets(out)
    make_half_plus_two(out)
    make_half_plus_two_pbtxt(out)
    make_variable_length(out)
    make_classify_float_input(out)
    make_missing_tensor(out)
    make_regress_two_outputs(out)
    make_truncated(out)
    make_no_saved_model(out)
    make_file_ops(out)
    (out / "README.md").write_text(README)

    # Load-check the TF1 models with the TF1 loader too.
    for rel in ["iris_tf1", "broken/classify_float_input",
                "broken/regress_two_outputs"]:
        with tf.Graph().as_default() as g, v1.Session(graph=g) as s:
            v1.saved_model.loader.load(s, ["serve"], str(out / rel))
    # ... and with the TF2 loader.
    sigs = tf.saved_model.load(str(out / "iris_tf1")).signatures
    assert sorted(sigs.keys()) == ["classify", "predict", "regress",
                                   "serving_default"], sorted(sigs.keys())

    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"all fixtures written to {args.out} ({total / 1e6:.2f} MB)")
    if total > 5_000_000:
        raise SystemExit("fixtures exceed 5 MB")


if __name__ == "__main__":
    sys.exit(main())
