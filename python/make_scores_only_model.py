"""Writes a small TF1 SavedModel whose classify signature has scores but no classes (TF Serving
then answers with "" labels). Input: serialized tf.Example with float feature `x` [3]; scores
= softmax(x). Also prints the scores TensorFlow computes for the examples given as JSON.

Usage: make_scores_only_model.py EXPORT_DIR '[[1, 2, 3], ...]'
"""

import json
import sys

import numpy as np
import tensorflow as tf

export_dir, rows = sys.argv[1], json.loads(sys.argv[2])
tf1 = tf.compat.v1
graph = tf.Graph()
with graph.as_default():
    serialized = tf1.placeholder(tf.string, [None], name="tf_example")
    parsed = tf1.io.parse_example(serialized, {"x": tf1.io.FixedLenFeature([3], tf.float32)})
    scores = tf.nn.softmax(parsed["x"], name="scores")
    with tf1.Session(graph=graph) as sess:
        signature = tf1.saved_model.classification_signature_def(
            examples=serialized, classes=None, scores=scores
        )
        builder = tf1.saved_model.Builder(export_dir)
        builder.add_meta_graph_and_variables(
            sess, ["serve"], signature_def_map={"serving_default": signature}
        )
        builder.save()
        examples = [
            tf.train.Example(
                features=tf.train.Features(
                    feature={"x": tf.train.Feature(float_list=tf.train.FloatList(value=r))}
                )
            ).SerializeToString()
            for r in rows
        ]
        out = sess.run(scores, {serialized: examples})
print(json.dumps(np.asarray(out, dtype=np.float64).tolist()))
