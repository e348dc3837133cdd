//! The schemas in `proto/` are TensorFlow 2.21's, field for field, and every protobuf file smtool
//! reads from the fixtures decodes with no unknown field anywhere and survives a round trip.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, Kind, MessageDescriptor, ReflectMessage, Value,
};
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorProto, FileDescriptorSet};
use smtool::proto::tensorflow as tf;
use smtool::proto_ext::descriptor_pool;
use smtool::savedmodel::{bundle, tfrecord};

/// A comparable summary of one message type: every field with number, label, type and oneof.
fn describe_message(prefix: &str, m: &DescriptorProto, out: &mut BTreeMap<String, String>) {
    let name = format!("{prefix}.{}", m.name());
    for f in &m.field {
        let oneof = f
            .oneof_index
            .filter(|_| !f.proto3_optional())
            .map(|i| m.oneof_decl[i as usize].name().to_owned());
        out.insert(
            format!("{name}#{}", f.number()),
            format!(
                "{} {:?} {:?} {} oneof={oneof:?} optional={} packed={:?}",
                f.name(),
                f.label(),
                f.r#type(),
                f.type_name(),
                f.proto3_optional(),
                f.options.as_ref().and_then(|o| o.packed)
            ),
        );
    }
    out.insert(
        format!("{name}#map_entry"),
        format!("{:?}", m.options.as_ref().and_then(|o| o.map_entry)),
    );
    for n in &m.nested_type {
        describe_message(&name, n, out);
    }
    for e in &m.enum_type {
        describe_enum(&name, e, out);
    }
}

fn describe_enum(prefix: &str, e: &EnumDescriptorProto, out: &mut BTreeMap<String, String>) {
    for v in &e.value {
        out.insert(
            format!("{prefix}.{}={}", e.name(), v.name()),
            v.number().to_string(),
        );
    }
}

fn describe_file(f: &FileDescriptorProto) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let pkg = format!(".{}", f.package());
    out.insert("syntax".into(), f.syntax().to_owned());
    out.insert("deps".into(), f.dependency.join(","));
    for m in &f.message_type {
        describe_message(&pkg, m, &mut out);
    }
    for e in &f.enum_type {
        describe_enum(&pkg, e, &mut out);
    }
    for s in &f.service {
        for m in &s.method {
            out.insert(
                format!("{pkg}.{}/{}", s.name(), m.name()),
                format!(
                    "{} {} {} {}",
                    m.input_type(),
                    m.output_type(),
                    m.client_streaming(),
                    m.server_streaming()
                ),
            );
        }
    }
    out
}

#[test]
fn schemas_match_the_wheel_descriptors_field_for_field() {
    let wheel = std::fs::read(common::root().join("proto/wheel_descriptors.binpb"))
        .expect("proto/wheel_descriptors.binpb is committed");
    let wheel = FileDescriptorSet::decode(wheel.as_slice()).expect("valid descriptor set");
    let ours = FileDescriptorSet::decode(smtool::proto::DESCRIPTOR_SET).expect("valid set");
    let ours: BTreeMap<&str, &FileDescriptorProto> =
        ours.file.iter().map(|f| (f.name(), f)).collect();
    assert!(wheel.file.len() > 50, "the closure holds every schema");
    for file in &wheel.file {
        let mine = ours
            .get(file.name())
            .unwrap_or_else(|| panic!("{} is not compiled into smtool", file.name()));
        assert_eq!(describe_file(file), describe_file(mine), "{}", file.name());
    }
    for needed in [
        "tensorflow/core/protobuf/saved_model.proto",
        "tensorflow/core/protobuf/fingerprint.proto",
        "tensorflow/core/protobuf/tensor_bundle.proto",
        "tensorflow/core/example/example.proto",
        "tensorflow_serving/apis/prediction_service.proto",
        "tensorflow_serving/apis/model_service.proto",
        "tensorflow_serving/apis/prediction_log.proto",
        "tensorflow_serving/config/model_server_config.proto",
    ] {
        assert!(ours.contains_key(needed), "{needed}");
    }
}

/// Every unknown field (or unknown enum number) in a message tree, with its path. The payloads of
/// `google.protobuf.Any` are decoded too when their type is known.
fn unknowns(msg: &DynamicMessage, path: &str, pool: &DescriptorPool, out: &mut Vec<String>) {
    for u in msg.unknown_fields() {
        out.push(format!("{path}: unknown field #{}", u.number()));
    }
    if msg.descriptor().full_name() == "google.protobuf.Any" {
        let url = msg.get_field_by_name("type_url");
        let value = msg.get_field_by_name("value");
        if let (Some(Value::String(url)), Some(Value::Bytes(bytes))) =
            (url.as_deref(), value.as_deref())
        {
            let ty = url.rsplit('/').next().unwrap_or("");
            if let Some(desc) = pool.get_message_by_name(ty) {
                match DynamicMessage::decode(desc, bytes.as_ref()) {
                    Ok(inner) => unknowns(&inner, &format!("{path}<{ty}>"), pool, out),
                    Err(e) => out.push(format!("{path}<{ty}>: {e}")),
                }
            }
        }
    }
    for (field, value) in msg.fields() {
        let p = format!("{path}.{}", field.name());
        let enum_kind = match field.kind() {
            Kind::Enum(e) => Some(e),
            _ => None,
        };
        let mut visit = |v: &Value, p: &str| match v {
            Value::Message(m) => unknowns(m, p, pool, out),
            Value::EnumNumber(n) => {
                if let Some(e) = &enum_kind {
                    if e.get_value(*n).is_none() {
                        out.push(format!("{p}: unknown enum number {n} of {}", e.full_name()));
                    }
                }
            }
            _ => {}
        };
        match value {
            Value::List(items) => {
                for (i, v) in items.iter().enumerate() {
                    visit(v, &format!("{p}[{i}]"));
                }
            }
            Value::Map(map) => {
                for (k, v) in map {
                    visit(v, &format!("{p}[{k:?}]"));
                }
            }
            v => visit(v, &p),
        }
    }
}

/// Checks one encoded message: no unknown field, and prost decode -> encode -> decode loses
/// nothing (compared both as prost values and as descriptor-aware dynamic messages).
fn check<M: Message + Default>(bytes: &[u8], type_name: &str, what: &str) {
    let pool = descriptor_pool();
    let desc: MessageDescriptor = pool
        .get_message_by_name(type_name)
        .unwrap_or_else(|| panic!("{type_name} is in the pool"));
    let dynamic = DynamicMessage::decode(desc.clone(), bytes)
        .unwrap_or_else(|e| panic!("{what}: does not decode as {type_name}: {e}"));
    let mut found = Vec::new();
    unknowns(&dynamic, type_name, pool, &mut found);
    assert!(found.is_empty(), "{what}: {found:#?}");

    let typed = M::decode(bytes).unwrap_or_else(|e| panic!("{what}: prost decode: {e}"));
    let reencoded = typed.encode_to_vec();
    let again = M::decode(reencoded.as_slice()).expect("re-encoded message decodes");
    // Compared as encodings: float fields may hold NaN, which is never == itself.
    assert!(
        again.encode_to_vec() == reencoded,
        "{what}: prost decode -> encode -> decode changed the message"
    );
    let dynamic_again = DynamicMessage::decode(desc, reencoded.as_slice()).expect("decodes");
    assert!(
        same_message(&dynamic, &dynamic_again),
        "{what}: prost's encoding lost or changed data"
    );
}

/// Deep equality of dynamic messages, with floats compared bit for bit (NaN equals NaN).
fn same_message(a: &DynamicMessage, b: &DynamicMessage) -> bool {
    let fa: Vec<_> = a.fields().collect();
    let fb: Vec<_> = b.fields().collect();
    fa.len() == fb.len()
        && fa
            .iter()
            .zip(&fb)
            .all(|((da, va), (db, vb))| da.number() == db.number() && same_value(va, vb))
        && a.unknown_fields().count() == b.unknown_fields().count()
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::F32(x), Value::F32(y)) => x.to_bits() == y.to_bits(),
        (Value::F64(x), Value::F64(y)) => x.to_bits() == y.to_bits(),
        (Value::Message(x), Value::Message(y)) => same_message(x, y),
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

fn fixture_files(name: &str) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = walkdir::WalkDir::new(common::root().join("fixtures"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name() == name)
        // A deliberately truncated graph cannot decode.
        .filter(|e| !e.path().components().any(|c| c.as_os_str() == "truncated"))
        .map(|e| e.into_path())
        .collect();
    found.sort();
    found
}

fn rel(p: &Path) -> String {
    p.strip_prefix(common::root())
        .unwrap_or(p)
        .display()
        .to_string()
}

#[test]
fn saved_model_graphs_have_no_unknown_fields() {
    let files = fixture_files("saved_model.pb");
    assert!(files.len() >= 8, "fixtures hold SavedModels: {files:?}");
    for f in files {
        let bytes = std::fs::read(&f).expect("readable fixture");
        check::<tf::SavedModel>(&bytes, "tensorflow.SavedModel", &rel(&f));
    }
}

#[test]
fn text_format_graphs_parse_completely() {
    let files = fixture_files("saved_model.pbtxt");
    assert!(!files.is_empty());
    for f in files {
        let text = std::fs::read_to_string(&f).expect("readable fixture");
        let desc = descriptor_pool()
            .get_message_by_name("tensorflow.SavedModel")
            .expect("known type");
        // Text format has no way to carry unknown fields: parsing fails on any.
        let msg = DynamicMessage::parse_text_format(desc, &text)
            .unwrap_or_else(|e| panic!("{}: {e}", rel(&f)));
        check::<tf::SavedModel>(&msg.encode_to_vec(), "tensorflow.SavedModel", &rel(&f));
    }
}

#[test]
fn fingerprints_have_no_unknown_fields() {
    let files = fixture_files("fingerprint.pb");
    assert!(!files.is_empty());
    for f in files {
        let bytes = std::fs::read(&f).expect("readable fixture");
        check::<tf::FingerprintDef>(&bytes, "tensorflow.FingerprintDef", &rel(&f));
    }
}

#[test]
fn variables_index_entries_have_no_unknown_fields() {
    let files = fixture_files("variables.index");
    assert!(files.len() >= 5);
    for f in files {
        let bytes = std::fs::read(&f).expect("readable fixture");
        let entries = bundle::table_entries(&bytes).unwrap_or_else(|e| panic!("{}: {e}", rel(&f)));
        assert!(entries.iter().any(|(k, _)| k.is_empty()), "header present");
        for (key, value) in entries {
            let what = format!("{} key {:?}", rel(&f), String::from_utf8_lossy(&key));
            if key.is_empty() {
                check::<tf::BundleHeaderProto>(&value, "tensorflow.BundleHeaderProto", &what);
            } else {
                check::<tf::BundleEntryProto>(&value, "tensorflow.BundleEntryProto", &what);
            }
        }
    }
}

#[test]
fn warmup_records_have_no_unknown_fields() {
    let files = fixture_files("tf_serving_warmup_requests");
    assert!(!files.is_empty(), "a fixture carries warmup requests");
    for f in files {
        let bytes = std::fs::read(&f).expect("readable fixture");
        let records = tfrecord::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", rel(&f)));
        assert!(!records.is_empty());
        for (i, r) in records.iter().enumerate() {
            check::<smtool::proto::tensorflow::serving::PredictionLog>(
                r,
                "tensorflow.serving.PredictionLog",
                &format!("{} record {i}", rel(&f)),
            );
        }
    }
}

#[test]
fn an_unknown_field_is_detected() {
    // A fingerprint with an extra field #999 (varint 1), nested inside a SavedModel-free message.
    let mut bytes = tf::FingerprintDef {
        saved_model_checksum: 7,
        ..Default::default()
    }
    .encode_to_vec();
    bytes.extend_from_slice(&[0xb8, 0x3e, 0x01]);
    let pool = descriptor_pool();
    let desc = pool
        .get_message_by_name("tensorflow.FingerprintDef")
        .expect("known type");
    let msg = DynamicMessage::decode(desc, bytes.as_slice()).expect("decodes");
    let mut found = Vec::new();
    unknowns(&msg, "FingerprintDef", pool, &mut found);
    assert_eq!(found, vec!["FingerprintDef: unknown field #999".to_owned()]);
}
