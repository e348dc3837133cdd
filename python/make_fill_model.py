"""Writes a small TF2 SavedModel whose output is as large as a number in its input says:
`serving_default` takes `n` (DT_INT32 scalar) and returns `ones` (DT_FLOAT [n], all 1.0). A
few bytes of request can make TensorFlow build a huge output, which the server must refuse
rather than copy into a response.

Usage: make_fill_model.py EXPORT_DIR
"""

import sys

import tensorflow as tf


class Fill(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([], tf.int32, name="n")])
    def serve(self, n):
        return {"ones": tf.ones([n], tf.float32)}


module = Fill()
tf.saved_model.save(module, sys.argv[1], signatures={"serving_default": module.serve})
