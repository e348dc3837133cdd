"""Writes two small SavedModels whose sessions keep or burn what a request gives them, for
tests of how the server hands tensors to TensorFlow and how it stops.

- EXPORT_DIR/queue: TF1 graph with a FIFOQueue of strings. Signature `push` (input `x`
  DT_STRING [-1], output `size` DT_INT32) enqueues `x` as one element, which TensorFlow keeps
  by reference, not by copy, after the run ends; signature `pop` (input `n` DT_INT32, unused;
  output `y` DT_STRING) dequeues it in a later run.
- EXPORT_DIR/spin: TF2 `serving_default` (input `n` DT_INT64 [-1], output `y` DT_FLOAT [-1])
  runs a while loop of n[0] iterations: a request with a huge n burns CPU for as long as the
  server lets it.

Usage: make_stateful_models.py EXPORT_DIR
"""

import os
import sys

import tensorflow as tf

out = sys.argv[1]

graph = tf.Graph()
with graph.as_default():
    x = tf.compat.v1.placeholder(tf.string, [None], name="x")
    n = tf.compat.v1.placeholder(tf.int32, [], name="n")
    queue = tf.queue.FIFOQueue(16, [tf.string], shared_name="strings")
    enqueue = queue.enqueue([x])
    with tf.control_dependencies([enqueue]):
        size = queue.size()
    popped = queue.dequeue()
    info = tf.compat.v1.saved_model.utils.build_tensor_info
    predict = tf.compat.v1.saved_model.signature_constants.PREDICT_METHOD_NAME
    push_sig = tf.compat.v1.saved_model.signature_def_utils.build_signature_def(
        inputs={"x": info(x)}, outputs={"size": info(size)}, method_name=predict
    )
    pop_sig = tf.compat.v1.saved_model.signature_def_utils.build_signature_def(
        inputs={"n": info(n)}, outputs={"y": info(popped)}, method_name=predict
    )
    with tf.compat.v1.Session(graph=graph) as sess:
        builder = tf.compat.v1.saved_model.Builder(os.path.join(out, "queue"))
        builder.add_meta_graph_and_variables(
            sess,
            [tf.saved_model.SERVING],
            signature_def_map={"push": push_sig, "pop": pop_sig},
        )
        builder.save()


class Spin(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="n")])
    def serve(self, n):
        def body(i, acc):
            return i + 1, acc * 0.5 + 1.0

        _, acc = tf.while_loop(
            lambda i, acc: i < n[0], body, [tf.constant(0, tf.int64), tf.constant(0.0)]
        )
        return {"y": tf.fill(tf.shape(n), acc)}


spin = Spin()
tf.saved_model.save(spin, os.path.join(out, "spin"), signatures={"serving_default": spin.serve})
