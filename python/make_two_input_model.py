"""Writes a TF2 SavedModel (tf.saved_model.save) whose `classify` and `regress` signatures
each have their own input tensor, as every TF2 export does: MultiInference must feed the
request's examples to both. Input: serialized tf.Example with float feature `x` [2].
classify: classes ["a", "b"], scores softmax(x); regress: outputs x[0] + 10 * x[1].

Usage: make_two_input_model.py EXPORT_DIR
"""

import sys

import tensorflow as tf

SPEC = {"x": tf.io.FixedLenFeature([2], tf.float32)}


class Model(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify(self, inputs):
        x = tf.io.parse_example(inputs, SPEC)["x"]
        n = tf.shape(x)[0]
        return {
            "classes": tf.tile(tf.constant([["a", "b"]]), [n, 1]),
            "scores": tf.nn.softmax(x),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress(self, inputs):
        x = tf.io.parse_example(inputs, SPEC)["x"]
        return {"outputs": x[:, 0] + 10.0 * x[:, 1]}


model = Model()
tf.saved_model.save(
    model,
    sys.argv[1],
    signatures={"classify": model.classify, "regress": model.regress},
)
