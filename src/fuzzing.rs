//! Entry points for the fuzz harness (`fuzz/`, `tests/fuzz.rs`): one function per decoder that
//! reads untrusted bytes, each calling the same library functions `serve`, `inspect` and
//! `validate` call, up to the point where a tensor would be handed to TensorFlow (the request
//! decoders, and what warmup does with a record, need the `serve` feature). A target ignores
//! whether its input was accepted; the harness checks that it returns, without a panic and
//! within an allocation bound.

#[cfg(feature = "serve")]
use std::collections::BTreeMap;
use std::path::Path;

use prost::Message;

#[cfg(feature = "serve")]
use crate::proto::tensorflow as tfp;
use crate::proto::tensorflow::serving as sv;
use crate::savedmodel::{bundle, crc, tfrecord};
#[cfg(feature = "serve")]
use crate::serve::{
    codec,
    limits::{Budget, Limits},
    tensor::{dtype, serialized_examples, tensor_from_proto},
};

/// A fuzz target: takes any bytes, must return.
pub type Target = fn(&[u8]);

/// Every target by name; the name is also its corpus directory under `fuzz/corpus/`.
pub const TARGETS: &[(&str, Target)] = &[
    #[cfg(feature = "serve")]
    ("rest_predict", rest_predict),
    #[cfg(feature = "serve")]
    ("rest_examples", rest_examples),
    #[cfg(feature = "serve")]
    ("grpc_predict", grpc_predict),
    #[cfg(feature = "serve")]
    ("grpc_input", grpc_input),
    ("saved_model_pb", saved_model_pb),
    ("saved_model_pbtxt", saved_model_pbtxt),
    ("variables_index", variables_index),
    ("tfrecord", tfrecord),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

#[cfg(feature = "serve")]
/// Signatures a REST predict body is read against, picked by the input's first byte.
const SIGNATURES: &[&[(&str, i32)]] = &[
    &[("x", dtype::FLOAT)],
    &[("x", dtype::DOUBLE)],
    &[("x", dtype::INT32)],
    &[("x", dtype::INT64)],
    &[("x", dtype::STRING)],
    &[("x", dtype::BOOL)],
    &[("x", dtype::UINT8)],
    &[("x", dtype::INT8)],
    &[("x", dtype::INT16)],
    &[("x", dtype::UINT16)],
    &[("x", dtype::HALF)],
    &[("x", dtype::UINT32)],
    &[("x", dtype::UINT64)],
    // DT_COMPLEX64 and DT_RESOURCE: types the codec does not convert.
    &[("x", 8)],
    &[("x", 20)],
    &[("x", dtype::FLOAT), ("y", dtype::STRING)],
    &[("a", dtype::INT64), ("b", dtype::FLOAT), ("c", dtype::BOOL)],
    &[],
];

#[cfg(feature = "serve")]
fn signature_inputs(selector: u8) -> BTreeMap<String, tfp::TensorInfo> {
    SIGNATURES[usize::from(selector) % SIGNATURES.len()]
        .iter()
        .map(|&(name, dtype)| {
            let info = tfp::TensorInfo {
                dtype,
                encoding: Some(tfp::tensor_info::Encoding::Name(format!("{name}:0"))),
                ..Default::default()
            };
            (name.to_owned(), info)
        })
        .collect()
}

#[cfg(feature = "serve")]
/// The budget of one request, as `serve --max-request-bytes 1048576` gives it: larger than any
/// input the harness makes, and small enough that what it admits stays within the harness's
/// allocation bound.
fn budget() -> Budget {
    Limits::from_request_bytes(1 << 20).budget()
}

#[cfg(feature = "serve")]
/// What the server does with a decoded `PredictRequest` before TensorFlow sees it.
fn predict_feeds(request: &sv::PredictRequest) {
    let mut budget = budget();
    for (alias, proto) in &request.inputs {
        if tensor_from_proto(proto, alias, &mut budget).is_err() {
            return;
        }
    }
}

#[cfg(feature = "serve")]
/// A REST predict body (`POST .../models/M:predict`), after one byte choosing the signature's
/// inputs: the fast reader, the general reader, then tensor conversion. Where the fast reader
/// accepts a body it must give exactly what the general one gives.
pub fn rest_predict(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let infos = signature_inputs(selector);
    let spec = sv::ModelSpec {
        name: "m".into(),
        ..Default::default()
    };
    let fast = codec::predict_request_fast(body, &spec, |_| Ok(infos.clone()));
    let general = codec::parse_body(body)
        .and_then(|doc| codec::predict_request(&doc, spec, |_| Ok(infos.clone())));
    if let Some((request, format)) = &fast {
        match &general {
            Ok((g, f)) => assert!(
                f == format && g.encode_to_vec() == request.encode_to_vec(),
                "the fast and general readers disagree"
            ),
            Err(e) => panic!(
                "the fast reader accepts a body the general one rejects: {}",
                e.message
            ),
        }
    }
    if let Ok((request, _)) = &general {
        predict_feeds(request);
    }
}

#[cfg(feature = "serve")]
/// A REST classify or regress body: the JSON reader, the `tf.Example`s it builds and their
/// serialized form as fed to the signature.
pub fn rest_examples(data: &[u8]) {
    let Ok(doc) = codec::parse_body(data) else {
        return;
    };
    if let Ok((_, input)) = codec::examples_input(&doc) {
        let _ = serialized_examples(Some(&input), &mut budget());
    }
}

#[cfg(feature = "serve")]
/// A gRPC `PredictRequest` message: decoding, then each input `TensorProto` into a tensor.
pub fn grpc_predict(data: &[u8]) {
    if let Ok(request) = sv::PredictRequest::decode(data) {
        predict_feeds(&request);
    }
}

#[cfg(feature = "serve")]
/// A gRPC `Input` (of `Classify`, `Regress` and `MultiInference`): decoding, then the
/// serialized `tf.Example`s (with their context) fed to the signature.
pub fn grpc_input(data: &[u8]) {
    if let Ok(input) = sv::Input::decode(data) {
        let _ = serialized_examples(Some(&input), &mut budget());
    }
}

/// `saved_model.pb` as `inspect`, `validate` and `serve` read it.
pub fn saved_model_pb(data: &[u8]) {
    let _ = crate::savedmodel::decode_binary(data, Path::new("saved_model.pb"));
}

/// `saved_model.pbtxt` as `inspect`, `validate` and `serve` read it.
pub fn saved_model_pbtxt(data: &[u8]) {
    let _ = crate::savedmodel::decode_text(data, Path::new("saved_model.pbtxt"));
}

/// `variables/variables.index`, as given and with its block checksums made right (random
/// bytes almost never pass a CRC32C, which would leave everything behind it untested).
pub fn variables_index(data: &[u8]) {
    let _ = bundle::BundleIndex::parse(data);
    if let Some(fixed) = with_table_crcs(data) {
        let _ = bundle::BundleIndex::parse(&fixed);
    }
}

/// `assets.extra/tf_serving_warmup_requests`, as given and with its checksums made right:
/// the records, each decoded as a `PredictionLog` and its request read up to TensorFlow.
pub fn tfrecord(data: &[u8]) {
    warmup_records(data);
    if let Some(fixed) = with_record_crcs(data) {
        warmup_records(&fixed);
    }
}

fn warmup_records(data: &[u8]) {
    let Ok(records) = tfrecord::parse(data) else {
        return;
    };
    #[cfg(feature = "serve")]
    if records.len() > crate::serve::warmup::MAX_RECORDS {
        return;
    }
    for record in &records {
        let Ok(log) = sv::PredictionLog::decode(*record) else {
            continue;
        };
        #[cfg(feature = "serve")]
        log_feeds(log);
        #[cfg(not(feature = "serve"))]
        let _ = log;
    }
}

/// What warmup does with one decoded `PredictionLog` before TensorFlow sees its request.
#[cfg(feature = "serve")]
fn log_feeds(log: sv::PredictionLog) {
    use sv::prediction_log::LogType;
    let input = match log.log_type {
        Some(LogType::PredictLog(l)) => {
            if let Some(r) = l.request {
                predict_feeds(&r);
            }
            return;
        }
        Some(LogType::ClassifyLog(l)) => l.request.and_then(|r| r.input),
        Some(LogType::RegressLog(l)) => l.request.and_then(|r| r.input),
        Some(LogType::MultiInferenceLog(l)) => l.request.and_then(|r| r.input),
        _ => None,
    };
    let _ = serialized_examples(input.as_ref(), &mut budget());
}

/// A copy of a TFRecord file whose length and data CRCs are right, as far as its length fields
/// lead; `None` when nothing had to change.
fn with_record_crcs(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = data.to_vec();
    let mut pos = 0usize;
    while let Some(header) = out.get(pos..pos + 8) {
        let crc = crc::masked(header).to_le_bytes();
        let len = u64::from_le_bytes(header.try_into().ok()?);
        out.get_mut(pos + 8..pos + 12)?.copy_from_slice(&crc);
        let start = pos + 12;
        let end = usize::try_from(len).ok()?.checked_add(start)?;
        let crc = crc::masked(out.get(start..end)?).to_le_bytes();
        out.get_mut(end..end + 4)?.copy_from_slice(&crc);
        pos = end + 4;
    }
    (out != data).then_some(out)
}

/// A copy of an SSTable whose index block and the data blocks it points at carry the right
/// CRC32C; `None` when the footer or index cannot be followed or nothing had to change.
fn with_table_crcs(data: &[u8]) -> Option<Vec<u8>> {
    const FOOTER_LEN: usize = 48;
    fn varint(b: &[u8], pos: &mut usize) -> Option<usize> {
        bundle::usize_varint(b, pos).ok()
    }
    fn handle(b: &[u8], pos: &mut usize) -> Option<(usize, usize)> {
        Some((varint(b, pos)?, varint(b, pos)?))
    }
    /// Sets the CRC of the block at `offset` (data, one compression byte, CRC); returns the
    /// block's data.
    fn fix(out: &mut [u8], (offset, size): (usize, usize)) -> Option<Vec<u8>> {
        let kind_at = offset.checked_add(size)?;
        let data_and_kind = out.get(offset..kind_at.checked_add(1)?)?;
        let crc = crc::masked(data_and_kind).to_le_bytes();
        let data = data_and_kind[..size].to_vec();
        let kind = data_and_kind[size];
        out.get_mut(kind_at + 1..kind_at + 5)?.copy_from_slice(&crc);
        match kind {
            // Only blocks of a plausible size are followed: the harness itself stays bounded.
            1 if snap::raw::decompress_len(&data).ok()? <= 1 << 20 => {
                snap::raw::Decoder::new().decompress_vec(&data).ok()
            }
            1 => None,
            _ => Some(data),
        }
    }
    let mut out = data.to_vec();
    let footer = out.get(out.len().checked_sub(FOOTER_LEN)?..)?;
    let mut pos = 0;
    let _metaindex = handle(footer, &mut pos)?;
    let index = handle(footer, &mut pos)?;
    let index_block = fix(&mut out, index)?;
    // Index entries: shared, unshared and value lengths, the key's tail, then a block handle.
    let restarts = u32::from_le_bytes(
        index_block
            .get(index_block.len().checked_sub(4)?..)?
            .try_into()
            .ok()?,
    );
    let limit = index_block
        .len()
        .checked_sub(4usize.checked_mul(usize::try_from(restarts).ok()?.checked_add(1)?)?)?;
    let mut pos = 0;
    while pos < limit {
        let _shared = varint(&index_block, &mut pos)?;
        let unshared = varint(&index_block, &mut pos)?;
        let value_len = varint(&index_block, &mut pos)?;
        let value_at = pos.checked_add(unshared)?;
        let value = index_block.get(value_at..value_at.checked_add(value_len)?)?;
        let mut p = 0;
        if let Some(h) = handle(value, &mut p) {
            fix(&mut out, h);
        }
        pos = value_at + value_len;
    }
    (out != data).then_some(out)
}
