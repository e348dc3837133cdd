"""Writes standard TensorFlow 2.21 exports that `smtool validate` must pass without a finding.

They cover what TensorFlow itself puts into SavedModels and a careless checker would flag: TF1
vocabulary files read by the init op (asset collection, table initialisers in the main op), the TF1
saver, TF2 control flow (If/While functions called through attrs), TF2 tables from asset files,
and `simple_save`. Used by tests/validate.rs; the models are not committed.

Usage: python python/make_validate_models.py OUT_DIR
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

v1 = tf.compat.v1


def tf1_vocab_classifier(out, vocab):
    """TF1 builder: index_table_from_file over an asset, classify signature, main op."""
    graph = tf.Graph()
    with graph.as_default():
        serialized = v1.placeholder(tf.string, [None], name="tf_example")
        feats = v1.io.parse_example(serialized, {"word": v1.io.FixedLenFeature([1], tf.string)})
        table = v1.lookup.StaticVocabularyTable(
            v1.lookup.TextFileInitializer(
                vocab, tf.string, v1.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64, v1.lookup.TextFileIndex.LINE_NUMBER),
            num_oov_buckets=1)
        ids = table.lookup(tf.reshape(feats["word"], [-1]))
        w = v1.get_variable("w", [4, 3], initializer=v1.ones_initializer())
        scores = tf.nn.softmax(tf.nn.embedding_lookup(w, ids), name="scores")
        classes = tf.tile(tf.constant([["a", "b", "c"]]), [tf.shape(scores)[0], 1])
        sig = v1.saved_model.classification_signature_def(serialized, classes, scores)
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            sess.run(v1.tables_initializer())
            builder = v1.saved_model.Builder(out)
            builder.add_meta_graph_and_variables(
                sess, ["serve"], signature_def_map={"serving_default": sig},
                assets_collection=v1.get_collection(v1.GraphKeys.ASSET_FILEPATHS),
                main_op=v1.tables_initializer(), strip_default_attrs=True)
            builder.save()


def tf1_simple_save(out):
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 2], name="x")
        w = v1.Variable([[1.0], [2.0]], name="w")
        y = tf.matmul(x, w, name="y")
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            v1.saved_model.simple_save(sess, out, inputs={"x": x}, outputs={"y": y})


class Control(tf.Module):
    """TF2: control flow and a table from an asset file."""

    def __init__(self, vocab):
        super().__init__()
        self.scale = tf.Variable(2.0)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                vocab, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER), -1)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32),
                                  tf.TensorSpec([None], tf.string)])
    def serve(self, x, words):
        total = tf.constant(0.0)
        i = tf.constant(0)
        while i < tf.size(x):
            total += x[i]
            i += 1
        y = tf.cond(total > 0, lambda: x * self.scale, lambda: -x)
        return {"y": y, "ids": self.table.lookup(words)}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    vocab = os.path.join(out, "vocab.txt")
    with open(vocab, "w", encoding="utf-8") as fh:
        fh.write("alpha\nbeta\ngamma\n")
    tf1_vocab_classifier(os.path.join(out, "tf1_vocab_classifier"), vocab)
    tf1_simple_save(os.path.join(out, "tf1_simple_save"))
    m = Control(vocab)
    tf.saved_model.save(m, os.path.join(out, "tf2_control_flow"),
                        signatures={"serving_default": m.serve})
    os.remove(vocab)
    print("wrote 3 models to", out)


if __name__ == "__main__":
    main()
