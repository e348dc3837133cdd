"""Writes pairs of TensorFlow 2.21 SavedModels (OUT/<case>/old, OUT/<case>/new) that differ in one
part of the serving contract each, for `smtool diff` (tests/diff.rs). The models are not committed.

Cases:
- identical: the same tf.Module exported twice (a re-export: new function and tensor names).
- signatures: `score` renamed to `scoring`, `legacy` removed, `extra` added, `serving_default` kept.
- default: `serving_default` becomes what `classify_like` was; the old default is now `predict`.
- methods: TF1 classify signature (scores only) becomes a regress signature on the same input.
- tensors: one signature per input/output change (added, added with a default, removed, renamed,
  dtypes, narrowed, widened, rank, outputs, output narrowed, output widened).
- labels: TF1 classify signatures whose classes are a tiled string constant: `changed` (a,b,c to
  a,b,d), `reordered` (x,y,z to z,y,x).
- labels_tf2: a TF2 signature returning `tf.gather(tf.constant(labels), top_k indices)`: the
  constant sits in a function the signature calls; (a,b,c to a,b,e).
- variables: a variable [4,3] becomes [4,5]; the signature's inputs and outputs stay the same.
- ops: NEW also uses Cumsum.
- base: a model base path with versions 1, 2 (a re-export of 1) and 3 (one more output).

Usage: python python/make_diff_models.py OUT_DIR
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

v1 = tf.compat.v1
F = tf.float32


def spec(shape, dtype=F):
    return tf.TensorSpec(shape, dtype)


def save(module, path, signatures):
    tf.saved_model.save(module, path, signatures=signatures)


def fn(body, *specs):
    return tf.function(body, input_signature=list(specs))


class Half(tf.Module):
    def __init__(self):
        super().__init__()
        self.a = tf.Variable(0.5)
        self.b = tf.Variable(2.0)

    @tf.function(input_signature=[spec([None])])
    def serve(self, x):
        return {"y": self.a * x + self.b}


class Half3(Half):
    @tf.function(input_signature=[spec([None])])
    def serve(self, x):
        return {"y": self.a * x + self.b, "y_doubled": 2.0 * (self.a * x + self.b)}


def identical(out):
    for side in ("old", "new"):
        m = Half()
        save(m, f"{out}/identical/{side}", {"serving_default": m.serve})


def signatures(out):
    row_sum = lambda x: {"s": tf.reduce_sum(x, axis=1)}  # noqa: E731
    double = lambda x: {"y": 2.0 * x}  # noqa: E731
    m = tf.Module()
    f = fn(double, spec([None, 4]))
    save(m, f"{out}/signatures/old", {
        "serving_default": f,
        "score": fn(row_sum, spec([None, 4])),
        "legacy": fn(lambda x: {"z": x[:, 0]}, spec([None, 8])),
    })
    save(m, f"{out}/signatures/new", {
        "serving_default": f,
        "scoring": fn(row_sum, spec([None, 4])),
        "extra": fn(lambda x: {"e": tf.reduce_max(x, axis=1)}, spec([None, 6])),
    })


def default(out):
    m = tf.Module()
    f = fn(lambda x: {"y": 2.0 * x}, spec([None, 4]))
    g = fn(lambda inputs: {"scores": tf.nn.softmax(tf.zeros([tf.size(inputs), 3]))},
           spec([None], tf.string))
    save(m, f"{out}/default/old", {"serving_default": f, "classify_like": g})
    save(m, f"{out}/default/new", {"serving_default": g, "classify_like": g, "predict": f})


def methods(out):
    for side in ("old", "new"):
        graph = tf.Graph()
        with graph.as_default():
            serialized = v1.placeholder(tf.string, [None], name="tf_example")
            parsed = v1.io.parse_example(serialized, {"x": v1.io.FixedLenFeature([3], F)})
            if side == "old":
                scores = tf.nn.softmax(parsed["x"], name="scores")
                sig = v1.saved_model.classification_signature_def(serialized, None, scores)
            else:
                value = tf.reduce_sum(parsed["x"], axis=1, keepdims=True, name="value")
                sig = v1.saved_model.regression_signature_def(serialized, value)
            with v1.Session(graph=graph) as sess:
                builder = v1.saved_model.Builder(f"{out}/methods/{side}")
                builder.add_meta_graph_and_variables(
                    sess, ["serve"], signature_def_map={"serving_default": sig})
                builder.save()


def tensors(out):
    total = lambda x: tf.reduce_sum(tf.reshape(x, [tf.shape(x)[0], -1]), axis=1)  # noqa: E731
    old = {
        "added": fn(lambda x: {"y": total(x)}, spec([None, 4])),
        "defaulted": fn(lambda x: {"y": total(x)}, spec([None, 4])),
        "removed": fn(lambda x, w: {"y": total(x) * w}, spec([None, 4]), spec([None])),
        "renamed": fn(lambda x: {"y": total(x)}, spec([None, 4])),
        "dtypes": fn(lambda x: {"y": 2.0 * x}, spec([None], F)),
        "narrowed": fn(lambda x: {"y": total(x)}, spec([None, None])),
        "widened": fn(lambda x: {"y": total(x)}, spec([None, 4])),
        "rank": fn(lambda x: {"y": total(x)}, spec([None, 4])),
        "outputs": fn(lambda x: {"a": total(x), "b": 2.0 * x, "c": x[:, :2]}, spec([None, 4])),
        "out_narrowed": fn(lambda x: {"y": 2.0 * x}, spec([None, None])),
        "out_widened": fn(lambda x: {"y": tf.zeros([tf.shape(x)[0], 10]) + total(x)[:, None]},
                          spec([None, None])),
    }

    def with_default(x, scale=tf.constant(2.0)):
        return {"y": total(x) * scale}

    new = {
        "added": fn(lambda x, w: {"y": total(x) * w}, spec([None, 4]), spec([None])),
        "defaulted": tf.function(with_default, input_signature=[spec([None, 4]), spec([])]),
        "removed": fn(lambda x: {"y": total(x)}, spec([None, 4])),
        "renamed": fn(lambda features: {"y": total(features)}, spec([None, 4])),
        "dtypes": fn(lambda x: {"y": 2.0 * x}, spec([None], tf.float64)),
        "narrowed": fn(lambda x: {"y": total(x)}, spec([None, 28])),
        "widened": fn(lambda x: {"y": total(x)}, spec([None, None])),
        "rank": fn(lambda x: {"y": total(x)}, spec([None, 2, 2])),
        "outputs": fn(lambda x: {"a": total(x), "b_renamed": 2.0 * x, "d": x[:, :3] * x[:, :3]},
                      spec([None, 4])),
        "out_narrowed": fn(lambda x: {"y": tf.zeros([tf.shape(x)[0], 10]) + total(x)[:, None]},
                           spec([None, None])),
        "out_widened": fn(lambda x: {"y": 2.0 * x}, spec([None, None])),
    }
    m = tf.Module()
    save(m, f"{out}/tensors/old", old)
    save(m, f"{out}/tensors/new", new)


def labels(out):
    names = {"old": (["a", "b", "c"], ["x", "y", "z"]), "new": (["a", "b", "d"], ["z", "y", "x"])}
    for side, (changed, reordered) in names.items():
        graph = tf.Graph()
        with graph.as_default():
            serialized = v1.placeholder(tf.string, [None], name="tf_example")
            parsed = v1.io.parse_example(serialized, {"x": v1.io.FixedLenFeature([3], F)})
            scores = tf.nn.softmax(parsed["x"], name="scores")
            rows = tf.shape(scores)[0]
            sigs = {}
            for key, label_names in (("changed", changed), ("reordered", reordered)):
                classes = tf.tile(tf.constant([label_names]), [rows, 1], name=f"{key}_classes")
                sigs[key] = v1.saved_model.classification_signature_def(
                    serialized, classes, scores)
            sigs["serving_default"] = sigs["changed"]
            with v1.Session(graph=graph) as sess:
                builder = v1.saved_model.Builder(f"{out}/labels/{side}")
                builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map=sigs)
                builder.save()


class Classifier(tf.Module):
    def __init__(self, names):
        super().__init__()
        self.names = names

    @tf.function(input_signature=[spec([None], tf.string)])
    def classify(self, inputs):
        scores = tf.nn.softmax(tf.ones([tf.size(inputs), len(self.names)]))
        top = tf.math.top_k(scores, k=len(self.names))
        return {"classes": tf.gather(tf.constant(self.names), top.indices), "scores": top.values}


def labels_tf2(out):
    for side, names in (("old", ["a", "b", "c"]), ("new", ["a", "b", "e"])):
        m = Classifier(names)
        save(m, f"{out}/labels_tf2/{side}", {"serving_default": m.classify})


class Weights(tf.Module):
    def __init__(self, units):
        super().__init__()
        self.w = tf.Variable(tf.ones([4, units]))

    @tf.function(input_signature=[spec([None, 4])])
    def serve(self, x):
        return {"y": tf.reduce_sum(tf.matmul(x, self.w), axis=1)}


def variables(out):
    for side, units in (("old", 3), ("new", 5)):
        m = Weights(units)
        save(m, f"{out}/variables/{side}", {"serving_default": m.serve})


def ops(out):
    m = tf.Module()
    save(m, f"{out}/ops/old", {
        "serving_default": fn(lambda x: {"y": 2.0 * x}, spec([None]))})
    save(m, f"{out}/ops/new", {
        "serving_default": fn(lambda x: {"y": tf.math.cumsum(2.0 * x)}, spec([None]))})


def base(out):
    for version, cls in (("1", Half), ("2", Half), ("3", Half3)):
        m = cls()
        save(m, f"{out}/base/{version}", {"serving_default": m.serve})


def main():
    out = sys.argv[1]
    for case in (identical, signatures, default, methods, tensors, labels, labels_tf2, variables, ops,
                 base):
        case(out)


if __name__ == "__main__":
    main()
