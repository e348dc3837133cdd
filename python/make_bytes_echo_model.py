"""Writes a small TF2 SavedModel that echoes binary strings: `serving_default` takes `data`
(DT_STRING [-1]) and returns `out_bytes` (the same strings, an Identity of the input, so TF
Serving's `_bytes` rule writes them as {"b64": ...}) and `length` (DT_INT32 byte counts).

Usage: make_bytes_echo_model.py EXPORT_DIR
"""

import sys

import tensorflow as tf


class Echo(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="data")])
    def serve(self, data):
        return {"out_bytes": tf.identity(data), "length": tf.strings.length(data)}


module = Echo()
tf.saved_model.save(module, sys.argv[1], signatures={"serving_default": module.serve})
