#!/usr/bin/env python3
"""Benchmark: `smtool add-classify` against the Python way of adding a classify signature (load
the model with TensorFlow, trace a tf.function that parses tf.Examples, decodes the images, calls
the model, sorts and labels the scores, and save it again), on the digits fixture, whole process
each time, in the same run on the same machine. Prints a Markdown table.

    cargo build --release && .venv/bin/python python/bench_add_classify.py [--runs 5]

The Python way still cannot give the signature the classify method: `tf.saved_model.save` always
writes `tensorflow/serving/predict`, so the result fails TensorFlow's `is_valid_signature` classify
rule (TensorFlow Serving still serves it at `:classify` while its method-name check is off).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def recipe(src: str, dst: str, labels_file: str) -> None:
    """The TensorFlow 2 re-export a user would write instead of smtool add-classify."""
    import tensorflow as tf

    loaded = tf.saved_model.load(src)
    serve = loaded.signatures["serving_default"]
    with open(labels_file, encoding="utf-8") as f:
        labels = tf.constant(f.read().splitlines())

    def decode(data):
        image = tf.io.decode_image(data, channels=1, expand_animations=False)
        image = tf.image.resize(tf.cast(image, tf.float32), [28, 28])
        return image / 255.0

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify(inputs):
        parsed = tf.io.parse_example(inputs, {"x": tf.io.FixedLenFeature([], tf.string)})
        x = tf.map_fn(decode, parsed["x"],
                      fn_output_signature=tf.TensorSpec([28, 28, 1], tf.float32))
        scores, indices = tf.math.top_k(serve(x=x)["output_0"], k=labels.shape[0])
        return {"classes": tf.gather(labels, indices), "scores": scores}

    tf.saved_model.save(loaded, dst, signatures={"serving_default": serve, "classify": classify})


def median_seconds(make_cmd, runs: int) -> float:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs + 1):
            dst = os.path.join(tmp, f"out{i}")
            start = time.perf_counter()
            subprocess.run(make_cmd(dst), check=True, capture_output=True, env=env)
            elapsed = time.perf_counter() - start
            shutil.rmtree(dst)
            if i > 0:  # the first run warms the page cache
                times.append(elapsed)
    return statistics.median(times)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--recipe":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        recipe(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    smtool = ROOT / "target" / "release" / "smtool"
    if not smtool.is_file():
        sys.exit("build first: cargo build --release")
    model = str(ROOT / "fixtures/digits/model")
    labels = str(ROOT / "fixtures/digits/labels.txt")
    ours = median_seconds(
        lambda dst: [str(smtool), "add-classify", model, "--labels", labels,
                     "--feature", "x=image", "--out", dst], args.runs)
    theirs = median_seconds(
        lambda dst: [sys.executable, __file__, "--recipe", model, dst, labels], args.runs)
    print(f"Model: `fixtures/digits/model`, median of {args.runs} runs, whole process.\n")
    print("| command | median |")
    print("|---|---|")
    print(f"| `smtool add-classify --feature x=image` | {ours * 1000:.1f} ms |")
    print(f"| TensorFlow: load, trace a classify `tf.function`, save | {theirs * 1000:.0f} ms |")
    print(f"\nsmtool is {theirs / ours:.0f}x faster.")


if __name__ == "__main__":
    main()
