#!/usr/bin/env python3
"""Regenerate smtool's `proto/` tree from the descriptors compiled into the PyPI wheels.

TensorFlow and TensorFlow Serving ship no `.proto` sources in their wheels, but every generated
`*_pb2.py` module embeds its compiled `FileDescriptorProto` (the `AddSerializedFile(b'...')` call).
Those descriptors are the authoritative schemas of the exact release smtool targets. This script

1. finds the installed `tensorflow` and `tensorflow_serving` packages *without importing them*,
2. reads the serialized descriptors out of every `*_pb2.py` with `ast` (nothing is executed),
3. takes the dependency closure of the schemas smtool uses (ROOTS below),
4. writes them as `.proto` source files under `proto/` and the untouched descriptors as
   `proto/wheel_descriptors.binpb` (a `FileDescriptorSet`), which the test suite compares
   field for field with what `build.rs` compiles from the `.proto` files.

Rerun (versions pinned in python/requirements.txt):

    python3 -m venv .venv && .venv/bin/pip install -r python/requirements.txt
    .venv/bin/python python/extract_protos.py
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import pathlib
import shutil
import sys

from google.protobuf import descriptor_pb2

# The schemas smtool reads or writes; their imports are pulled in automatically.
ROOTS = [
    "tensorflow/core/protobuf/saved_model.proto",
    "tensorflow/core/protobuf/meta_graph.proto",
    "tensorflow/core/protobuf/saver.proto",
    "tensorflow/core/protobuf/saved_object_graph.proto",
    "tensorflow/core/protobuf/trackable_object_graph.proto",
    "tensorflow/core/protobuf/struct.proto",
    "tensorflow/core/protobuf/fingerprint.proto",
    "tensorflow/core/protobuf/tensor_bundle.proto",
    "tensorflow/core/framework/graph.proto",
    "tensorflow/core/framework/node_def.proto",
    "tensorflow/core/framework/attr_value.proto",
    "tensorflow/core/framework/function.proto",
    "tensorflow/core/framework/op_def.proto",
    "tensorflow/core/framework/tensor.proto",
    "tensorflow/core/framework/tensor_shape.proto",
    "tensorflow/core/framework/types.proto",
    "tensorflow/core/framework/versions.proto",
    "tensorflow/core/example/example.proto",
    "tensorflow/core/example/feature.proto",
    "tensorflow_serving/apis/model.proto",
    "tensorflow_serving/apis/predict.proto",
    "tensorflow_serving/apis/classification.proto",
    "tensorflow_serving/apis/regression.proto",
    "tensorflow_serving/apis/inference.proto",
    "tensorflow_serving/apis/input.proto",
    "tensorflow_serving/apis/get_model_metadata.proto",
    "tensorflow_serving/apis/get_model_status.proto",
    "tensorflow_serving/apis/model_management.proto",
    "tensorflow_serving/apis/prediction_service.proto",
    "tensorflow_serving/apis/model_service.proto",
    "tensorflow_serving/apis/prediction_log.proto",
    "tensorflow_serving/config/model_server_config.proto",
]

# Packages whose pb2 modules may hold a schema in the closure.
PACKAGES = ["tensorflow", "tensorflow_serving", "tsl", "xla"]

# Well-known types come with every protobuf compiler (protox, protoc, prost-types).
BUILTIN_PREFIX = "google/protobuf/"

SCALAR = {
    descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE: "double",
    descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT: "float",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT64: "int64",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT64: "uint64",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT32: "int32",
    descriptor_pb2.FieldDescriptorProto.TYPE_FIXED64: "fixed64",
    descriptor_pb2.FieldDescriptorProto.TYPE_FIXED32: "fixed32",
    descriptor_pb2.FieldDescriptorProto.TYPE_BOOL: "bool",
    descriptor_pb2.FieldDescriptorProto.TYPE_STRING: "string",
    descriptor_pb2.FieldDescriptorProto.TYPE_BYTES: "bytes",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT32: "uint32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SFIXED32: "sfixed32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SFIXED64: "sfixed64",
    descriptor_pb2.FieldDescriptorProto.TYPE_SINT32: "sint32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SINT64: "sint64",
}
F = descriptor_pb2.FieldDescriptorProto


def package_dirs() -> list[pathlib.Path]:
    """Locate installed packages without importing them (importing TensorFlow is slow and noisy)."""
    dirs = []
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            dirs.extend(pathlib.Path(p) for p in spec.submodule_search_locations)
    return dirs


def serialized_descriptor(pb2: pathlib.Path) -> bytes | None:
    """The bytes literal passed to AddSerializedFile, read with ast (the module is not run)."""
    tree = ast.parse(pb2.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "AddSerializedFile"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, bytes)
        ):
            return node.args[0].value
    return None


def collect() -> dict[str, descriptor_pb2.FileDescriptorProto]:
    files = {}
    for root in package_dirs():
        for pb2 in sorted(root.rglob("*_pb2.py")):
            data = serialized_descriptor(pb2)
            if data is None:
                continue
            fd = descriptor_pb2.FileDescriptorProto.FromString(data)
            files.setdefault(fd.name, fd)
    return files


def closure(files: dict[str, descriptor_pb2.FileDescriptorProto]) -> list[str]:
    wanted, stack = [], list(ROOTS)
    while stack:
        name = stack.pop()
        if name in wanted or name.startswith(BUILTIN_PREFIX):
            continue
        if name not in files:
            sys.exit(f"extract_protos: '{name}' is not in any installed wheel; "
                     "install python/requirements.txt into the interpreter running this script")
        wanted.append(name)
        stack.extend(files[name].dependency)
    return sorted(wanted)


def quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Printer:
    """Writes a FileDescriptorProto back as .proto source (the subset of the language TF uses)."""

    def __init__(self, fd: descriptor_pb2.FileDescriptorProto):
        self.fd = fd
        self.syntax = fd.syntax or "proto2"
        self.lines: list[str] = []

    def out(self, depth: int, text: str) -> None:
        self.lines.append("  " * depth + text if text else "")

    def render(self) -> str:
        fd = self.fd
        self.out(0, "// Generated by python/extract_protos.py from the descriptor compiled into the")
        self.out(0, "// TensorFlow / TensorFlow Serving 2.21.0 wheels. Do not edit.")
        self.out(0, f'syntax = "{self.syntax}";')
        self.out(0, "")
        if fd.package:
            self.out(0, f"package {fd.package};")
            self.out(0, "")
        public = set(fd.public_dependency)
        for i, dep in enumerate(fd.dependency):
            self.out(0, f"import {'public ' if i in public else ''}{quote(dep)};")
        if fd.dependency:
            self.out(0, "")
        if fd.options.HasField("go_package"):
            self.out(0, f"option go_package = {quote(fd.options.go_package)};")
            self.out(0, "")
        for enum in fd.enum_type:
            self.enum(0, enum)
        for msg in fd.message_type:
            self.message(0, msg)
        for svc in fd.service:
            self.service(svc)
        if fd.extension:
            raise SystemExit(f"extract_protos: extensions in {fd.name} are not supported")
        return "\n".join(self.lines).rstrip() + "\n"

    def reserved(self, depth: int, ranges, names, exclusive_end: bool) -> None:
        parts = []
        for r in ranges:
            end = r.end - 1 if exclusive_end else r.end
            parts.append(str(r.start) if r.start == end else f"{r.start} to {end if end < 536870911 else 'max'}")
        if parts:
            self.out(depth, f"reserved {', '.join(parts)};")
        if names:
            self.out(depth, f"reserved {', '.join(quote(n) for n in names)};")

    def enum(self, depth: int, enum: descriptor_pb2.EnumDescriptorProto) -> None:
        self.out(depth, f"enum {enum.name} {{")
        if enum.options.allow_alias:
            self.out(depth + 1, "option allow_alias = true;")
        for v in enum.value:
            opts = " [deprecated = true]" if v.options.deprecated else ""
            self.out(depth + 1, f"{v.name} = {v.number}{opts};")
        self.reserved(depth + 1, enum.reserved_range, enum.reserved_name, exclusive_end=False)
        self.out(depth, "}")
        self.out(depth, "")

    def type_name(self, field: descriptor_pb2.FieldDescriptorProto) -> str:
        if field.type in (F.TYPE_MESSAGE, F.TYPE_ENUM):
            return field.type_name
        return SCALAR[field.type]

    def field_options(self, field: descriptor_pb2.FieldDescriptorProto) -> str:
        opts = []
        if field.HasField("default_value"):
            dv = field.default_value
            if field.type in (F.TYPE_STRING, F.TYPE_BYTES):
                dv = quote(dv)
            opts.append(f"default = {dv}")
        if field.options.HasField("packed"):
            opts.append(f"packed = {'true' if field.options.packed else 'false'}")
        if field.options.deprecated:
            opts.append("deprecated = true")
        if field.HasField("json_name") and field.json_name != camel(field.name):
            opts.append(f"json_name = {quote(field.json_name)}")
        return f" [{', '.join(opts)}]" if opts else ""

    def field(self, depth: int, field, maps: dict[str, descriptor_pb2.DescriptorProto],
              in_oneof: bool) -> None:
        entry = maps.get(field.type_name) if field.type == F.TYPE_MESSAGE else None
        if entry is not None:
            key, value = entry.field[0], entry.field[1]
            ty = f"map<{self.type_name(key)}, {self.type_name(value)}>"
            label = ""
        else:
            ty = self.type_name(field)
            if in_oneof:
                label = ""
            elif field.label == F.LABEL_REPEATED:
                label = "repeated "
            elif field.proto3_optional:
                label = "optional "
            elif self.syntax == "proto2":
                label = "required " if field.label == F.LABEL_REQUIRED else "optional "
            else:
                label = ""
        self.out(depth, f"{label}{ty} {field.name} = {field.number}{self.field_options(field)};")

    def message(self, depth: int, msg: descriptor_pb2.DescriptorProto, scope: str = "") -> None:
        full = f"{scope or '.' + self.fd.package}.{msg.name}"
        maps = {f"{full}.{n.name}": n for n in msg.nested_type if n.options.map_entry}
        self.out(depth, f"message {msg.name} {{")
        for enum in msg.enum_type:
            self.enum(depth + 1, enum)
        for nested in msg.nested_type:
            if not nested.options.map_entry:
                self.message(depth + 1, nested, full)
        real_oneofs = {i for f in msg.field if f.HasField("oneof_index") and not f.proto3_optional
                       for i in [f.oneof_index]}
        emitted = set()
        for field in msg.field:
            if field.HasField("oneof_index") and field.oneof_index in real_oneofs:
                idx = field.oneof_index
                if idx in emitted:
                    continue
                emitted.add(idx)
                self.out(depth + 1, f"oneof {msg.oneof_decl[idx].name} {{")
                for member in msg.field:
                    if member.HasField("oneof_index") and member.oneof_index == idx:
                        self.field(depth + 2, member, maps, in_oneof=True)
                self.out(depth + 1, "}")
            else:
                self.field(depth + 1, field, maps, in_oneof=False)
        self.reserved(depth + 1, msg.reserved_range, msg.reserved_name, exclusive_end=True)
        if msg.extension_range or msg.extension:
            raise SystemExit(f"extract_protos: extensions in {msg.name} are not supported")
        self.out(depth, "}")
        self.out(depth, "")

    def service(self, svc: descriptor_pb2.ServiceDescriptorProto) -> None:
        self.out(0, f"service {svc.name} {{")
        for m in svc.method:
            cs = "stream " if m.client_streaming else ""
            ss = "stream " if m.server_streaming else ""
            self.out(1, f"rpc {m.name}({cs}{m.input_type}) returns ({ss}{m.output_type});")
        self.out(0, "}")
        self.out(0, "")


def camel(name: str) -> str:
    parts = name.split("_")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent.parent / "proto"))
    args = parser.parse_args()
    out = pathlib.Path(args.out)

    files = collect()
    names = closure(files)
    if out.exists():
        shutil.rmtree(out)
    fds = descriptor_pb2.FileDescriptorSet()
    for name in names:
        fd = files[name]
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Printer(fd).render(), encoding="utf-8")
        fds.file.append(fd)
    (out / "wheel_descriptors.binpb").write_bytes(fds.SerializeToString(deterministic=True))
    print(f"wrote {len(names)} schemas to {out}")


if __name__ == "__main__":
    main()
