"""Writes a TensorFlow 2.21 export like TF Serving's test model `saved_model_counter`: a counter
variable with predict signatures that take no input (`get_counter`, `incr_counter`,
`reset_counter`) beside one that does (`incr_counter_by`). TF2 writes such signatures for
stateful tf.functions, and TF Serving serves them. Used by tests/validate.rs; not committed.

Usage: python python/make_counter_model.py OUT_DIR
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402


class Counter(tf.Module):
    def __init__(self):
        super().__init__()
        self.counter = tf.Variable(0.0)

    @tf.function(input_signature=[])
    def get_counter(self):
        return {"output": self.counter.read_value()}

    @tf.function(input_signature=[])
    def incr_counter(self):
        return {"output": self.counter.assign_add(1.0)}

    @tf.function(input_signature=[])
    def reset_counter(self):
        return {"output": self.counter.assign(0.0)}

    @tf.function(input_signature=[tf.TensorSpec([], tf.float32)])
    def incr_counter_by(self, delta):
        return {"output": self.counter.assign_add(delta)}


def main():
    out = sys.argv[1]
    m = Counter()
    signatures = {
        "get_counter": m.get_counter,
        "incr_counter": m.incr_counter,
        "reset_counter": m.reset_counter,
        "incr_counter_by": m.incr_counter_by,
        "serving_default": m.get_counter,
    }
    tf.saved_model.save(m, out, signatures=signatures)
    print("wrote", out)


if __name__ == "__main__":
    main()
