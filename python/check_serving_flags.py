"""TensorFlow Serving's own Python client (tensorflow-serving-api over grpcio, and
grpcio-health-checking) against a server started with TF Serving's command-line flags: over
TCP, a Unix socket (`--target unix:PATH`) or TLS (`--ca`, with `--cert`/`--key` for a client
certificate). Predicts [1, 2, 5] with a half_plus_two model (its answer given as
`--want`), reads its status, and with
`--health` asks grpc.health.v1.Health for the server and PredictionService. With
`--oversized N` it first sends a PredictRequest of more than N bytes and reports the status the
server answered it with (then the predict above must still succeed on the same channel).

Prints a JSON summary on stdout; exits non-zero (with the reason on stderr) on any mismatch.

Example:
    check_serving_flags.py --target unix:/tmp/smtool.sock --model half_plus_two \\
        --want 2.5,3,4.5 --health
"""

import argparse
import json
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
import numpy as np
import tensorflow as tf

TIMEOUT = 60.0


def channel(args):
    if not args.ca:
        return grpc.insecure_channel(args.target)
    read = lambda path: open(path, "rb").read() if path else None
    creds = grpc.ssl_channel_credentials(
        root_certificates=read(args.ca),
        private_key=read(args.key),
        certificate_chain=read(args.cert),
    )
    options = [("grpc.ssl_target_name_override", args.server_name)] if args.server_name else []
    return grpc.secure_channel(args.target, creds, options)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--want", required=True)
    parser.add_argument("--health", action="store_true")
    parser.add_argument("--expect-tensor-content", action="store_true")
    parser.add_argument("--ca")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--server-name")
    parser.add_argument("--connect-timeout", type=float, default=TIMEOUT)
    parser.add_argument("--oversized", type=int, metavar="N")
    args = parser.parse_args()

    summary = {}
    with channel(args) as ch:
        grpc.channel_ready_future(ch).result(timeout=args.connect_timeout)
        if args.health:
            health = health_pb2_grpc.HealthStub(ch)
            for service in ["", "tensorflow.serving.PredictionService"]:
                answer = health.Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT
                )
                if answer.status != health_pb2.HealthCheckResponse.SERVING:
                    raise SystemExit(f"health of '{service}': {answer}")
            summary["health"] = "SERVING"

        stub = prediction_service_pb2_grpc.PredictionServiceStub(ch)
        if args.oversized is not None:
            big = predict_pb2.PredictRequest()
            big.model_spec.name = args.model
            values = np.ones(args.oversized // 4 + 1, dtype=np.float32)
            big.inputs["x"].CopyFrom(tf.make_tensor_proto(values))
            try:
                stub.Predict(big, timeout=TIMEOUT)
                raise SystemExit(f"a {big.ByteSize()}-byte request was answered")
            except grpc.RpcError as e:
                summary["oversized"] = {
                    "bytes": big.ByteSize(),
                    "code": e.code().name,
                    "details": e.details(),
                }

        request = predict_pb2.PredictRequest()
        request.model_spec.name = args.model
        request.inputs["x"].CopyFrom(tf.make_tensor_proto([1.0, 2.0, 5.0], dtype=tf.float32))
        response = stub.Predict(request, timeout=TIMEOUT)
        y = response.outputs["y"]
        got = tf.make_ndarray(y)
        want = [float(v) for v in args.want.split(",")]
        if not np.allclose(got, want):
            raise SystemExit(f"predict: {got.tolist()}")
        if args.expect_tensor_content and (not y.tensor_content or y.float_val):
            raise SystemExit(f"predict: values not in tensor_content: {y}")
        summary["predict"] = got.tolist()
        summary["tensor_content"] = bool(y.tensor_content)

        status_request = get_model_status_pb2.GetModelStatusRequest()
        status_request.model_spec.name = args.model
        status = model_service_pb2_grpc.ModelServiceStub(ch).GetModelStatus(
            status_request, timeout=TIMEOUT
        )
        states = [v.state for v in status.model_version_status]
        if get_model_status_pb2.ModelVersionStatus.AVAILABLE not in states:
            raise SystemExit(f"status: {status}")
        summary["status"] = "AVAILABLE"
    json.dump(summary, sys.stdout)


if __name__ == "__main__":
    main()
