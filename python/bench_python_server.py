"""What users write instead of a model server: the same SavedModels behind Python's threaded
HTTP server with `tf.saved_model.load`, answering the same TF Serving-style requests the
benchmark sends (`:predict` with `instances` for digits, `:classify` with `examples` for iris).

Usage: bench_python_server.py PORT DIGITS_MODEL_DIR IRIS_MODEL_DIR
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import tensorflow as tf

PORT = int(sys.argv[1])
DIGITS = tf.saved_model.load(sys.argv[2]).signatures["serving_default"]
IRIS = tf.saved_model.load(sys.argv[3], tags=["serve"]).signatures["serving_default"]
DIGITS_OUTPUT = list(DIGITS.structured_outputs)[0]


def example_bytes(features):
    feature = {}
    for name, value in features.items():
        values = value if isinstance(value, list) else [value]
        feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without this, headers and body leave in two writes and Nagle + delayed ACK add ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        if self.path == "/v1/models/digits:predict":
            x = tf.constant(np.asarray(body["instances"], dtype=np.float32))
            out = DIGITS(x=x)[DIGITS_OUTPUT].numpy()
            self.reply(200, {"predictions": out.tolist()})
        elif self.path == "/v1/models/iris:classify":
            serialized = tf.constant([example_bytes(e) for e in body["examples"]])
            out = IRIS(inputs=serialized)
            classes = out["classes"].numpy()
            scores = out["scores"].numpy()
            results = [
                [[c.decode(), float(s)] for c, s in zip(row_c, row_s)]
                for row_c, row_s in zip(classes, scores)
            ]
            self.reply(200, {"results": results})
        else:
            self.reply(404, {"error": "not found"})


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    print("ready", flush=True)
    server.serve_forever()
