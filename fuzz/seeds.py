"""Writes the seed corpora of the fuzz targets into fuzz/corpus/ from the fixtures and from
request bodies like those of the tests. Run with the reference Python (.venv/bin/python
fuzz/seeds.py); the output is committed, so this is needed only to change the seeds."""

import pathlib
import shutil
import struct

from google.protobuf import text_format
from tensorflow.core.example import example_pb2
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (input_pb2, predict_pb2,
                                     prediction_log_pb2)

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
FIXTURES = ROOT / "fixtures"


def put(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data.encode() if isinstance(data, str) else data)


# rest_predict: one byte picks the signature (see SIGNATURES in src/fuzzing.rs), then the body.
FLOAT, DOUBLE, INT32, INT64, STRING, BOOL, UINT8 = 0, 1, 2, 3, 4, 5, 6
FLOAT_STRING, THREE = 15, 16
PREDICT = [
    (FLOAT, '{"instances": [1.0, 2.0, 5.0]}'),
    (FLOAT, '{"signature_name": "serving_default", "instances": [1, -2, 3]}'),
    (FLOAT, '{"instances": [[[1.5], [2]], [[3], [4e2]]]}'),
    (FLOAT, '{"inputs": [[0.25, NaN], [-Infinity, 7]]}'),
    (FLOAT, '{"instances": [NaN, Infinity, -Infinity, 0.1]}'),
    (FLOAT, '{"inputs": {"x": [[1, 2], [3, 4]]}}'),
    (DOUBLE, '{"instances": [18446744073709551615, 16777217, 1e39]}'),
    (INT32, '{"instances": [[1, 2], [3]]}'),
    (INT64, '{"inputs": 5}'),
    (STRING, '{"instances": ["a", {"b64": "aGk="}]}'),
    (STRING, '{"inputs": [{"b64": "%%%"}]}'),
    (BOOL, '{"instances": [true, false]}'),
    (UINT8, '{"instances": [[1], [1, 2]]}'),
    (FLOAT_STRING, '{"instances": [{"x": 1, "y": {"b64": "aGk="}}, {"x": 2, "y": "yo"}]}'),
    (THREE, '{"inputs": {"a": [[1, 2]], "b": 1.5, "c": true}}'),
    (THREE, '{"instances": [1], "inputs": [1]}'),
]
for i, (sig, body) in enumerate(PREDICT):
    put("rest_predict", f"body{i:02}", bytes([sig]) + body.encode())

EXAMPLES = [
    '{"examples": [{"x": [1.5, 2]}]}',
    '{"signature_name": "classify_x_to_y", "examples": [{"x": 1.0}, {"x": 2.0}]}',
    '{"context": {"c": "ctx"}, "examples": [{"s": "a", "b": {"b64": "AAE="}, '
    '"f": [1.5, NaN], "i": [1, true, false]}]}',
    '{"examples": [{"sepal_length": [5.1], "sepal_width": [3.3], "petal_length": [1.7], '
    '"petal_width": [0.5]}]}',
    '{"examples": [{"x": null}, {}]}',
]
for i, body in enumerate(EXAMPLES):
    put("rest_examples", f"body{i:02}", body)


def tensor(dtype, dims, **values):
    t = tensor_pb2.TensorProto(dtype=dtype, **values)
    t.tensor_shape.CopyFrom(tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims]))
    return t


def predict_request():
    r = predict_pb2.PredictRequest()
    r.model_spec.name = "half_plus_two"
    r.model_spec.signature_name = "serving_default"
    r.inputs["x"].CopyFrom(tensor(types_pb2.DT_FLOAT, [3], float_val=[1.0, 2.0, 5.0]))
    r.output_filter.append("y")
    return r


TENSORS = [
    tensor(types_pb2.DT_FLOAT, [2, 2], tensor_content=b"\0\0\x80?" * 4),
    tensor(types_pb2.DT_STRING, [2], string_val=[b"a", b"bc"]),
    tensor(types_pb2.DT_INT64, [4], int64_val=[7]),
    tensor(types_pb2.DT_HALF, [1], half_val=[15360]),
    tensor(types_pb2.DT_BOOL, [], bool_val=[True]),
]
put("grpc_predict", "predict00", predict_request().SerializeToString())
for i, t in enumerate(TENSORS):
    r = predict_pb2.PredictRequest()
    r.model_spec.name = "m"
    r.inputs["x"].CopyFrom(t)
    put("grpc_predict", f"predict{i + 1:02}", r.SerializeToString())


def example(**features):
    e = example_pb2.Example()
    for k, v in features.items():
        f = e.features.feature[k]
        if isinstance(v[0], float):
            f.float_list.value.extend(v)
        elif isinstance(v[0], int):
            f.int64_list.value.extend(v)
        else:
            f.bytes_list.value.extend(v)
    return e


def example_input():
    i = input_pb2.Input()
    i.example_list.examples.extend([example(x=[1.0]), example(x=[2.0], s=[b"a"], n=[3, 4])])
    return i


def context_input():
    i = input_pb2.Input()
    i.example_list_with_context.context.CopyFrom(example(c=[b"ctx"]))
    i.example_list_with_context.examples.extend([example(x=[1.5]), example(i=[1, 0])])
    return i


put("grpc_input", "input00", example_input().SerializeToString())
put("grpc_input", "input01", context_input().SerializeToString())


def tfrecord(records):

    def crc32c(data):
        crc = 0xFFFFFFFF
        for b in data:
            crc ^= b
            for _ in range(8):
                crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        return crc ^ 0xFFFFFFFF

    def masked(data):
        c = crc32c(data)
        return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    out = b""
    for data in records:
        length = struct.pack("<Q", len(data))
        out += length + struct.pack("<I", masked(length)) + data + struct.pack("<I", masked(data))
    return out


logs = []
log = prediction_log_pb2.PredictionLog()
log.predict_log.request.CopyFrom(predict_request())
logs.append(log)
log = prediction_log_pb2.PredictionLog()
log.classify_log.request.model_spec.name = "m"
log.classify_log.request.input.CopyFrom(example_input())
logs.append(log)
log = prediction_log_pb2.PredictionLog()
log.regress_log.request.input.CopyFrom(context_input())
logs.append(log)
log = prediction_log_pb2.PredictionLog()
log.multi_inference_log.request.input.CopyFrom(example_input())
log.multi_inference_log.request.tasks.add().method_name = "tensorflow/serving/classify"
logs.append(log)
put("tfrecord", "warmup00", tfrecord([l.SerializeToString() for l in logs]))
put("tfrecord", "warmup01", tfrecord([b"", b"not a log"]))
shutil.copy(FIXTURES / "vocab_assets/assets.extra/tf_serving_warmup_requests",
            CORPUS / "tfrecord" / "vocab_assets")

# Model files: the smaller fixtures as they are, and two of them in text format.
for name in ["half_plus_two/1", "variable_length", "vocab_assets", "broken/classify_float_input",
             "broken/truncated"]:
    flat = name.replace("/", "_")
    put("saved_model_pb", flat, (FIXTURES / name / "saved_model.pb").read_bytes())
for name in ["variable_length", "broken/classify_float_input"]:
    model = saved_model_pb2.SavedModel()
    model.ParseFromString((FIXTURES / name / "saved_model.pb").read_bytes())
    put("saved_model_pbtxt", name.replace("/", "_"), text_format.MessageToString(model))
for name in ["half_plus_two/1", "iris_tf1", "vocab_assets", "digits/model", "variable_length",
             "broken/regress_two_outputs"]:
    put("variables_index", name.replace("/", "_"),
        (FIXTURES / name / "variables/variables.index").read_bytes())
