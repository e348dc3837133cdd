//! TensorFlow Serving's REST JSON: request bodies into the TF Serving protos (row `instances`
//! and columnar `inputs` predict formats, classify / regress `examples` + `context` into
//! `tf.Example`s) and responses back into JSON, with TF Serving's messages for every mistake.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;

use super::error::{Code, ServeError};
use super::json::{self, Json, Number};
use super::tensor::dtype;
use crate::proto::tensorflow as tfp;
use crate::proto::tensorflow::serving as sv;
use crate::proto_ext::shape_debug;
use crate::proto_ext::{dtype_name, shape_proto};

type Result<T> = std::result::Result<T, ServeError>;

/// Which predict format a request used; the response uses the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `instances` in, `predictions` out.
    Row,
    /// `inputs` in, `outputs` out.
    Columnar,
}

/// TensorFlow's `DataTypeString`: `float`, `int64`, `string`, ...
fn dtype_string(d: i32) -> String {
    let name = dtype_name(d);
    name.strip_prefix("DT_").unwrap_or(&name).to_lowercase()
}

fn invalid(message: impl Into<String>) -> ServeError {
    ServeError::invalid(message)
}

/// Parses a request body; the top level must be an object.
pub fn parse_body(body: &[u8]) -> Result<Json> {
    if body.is_empty() {
        return Err(invalid("JSON Parse error: The document is empty"));
    }
    let doc = json::parse(body).map_err(|e| {
        invalid(format!(
            "JSON Parse error: {} at offset: {}",
            e.message, e.offset
        ))
    })?;
    if !matches!(doc, Json::Object(_)) {
        return Err(invalid(format!(
            "JSON Value: {} Is not object",
            doc.quote()
        )));
    }
    Ok(doc)
}

/// The optional `signature_name`.
pub fn signature_name(doc: &Json) -> Result<String> {
    match doc.get("signature_name") {
        None => Ok(String::new()),
        Some(Json::String(s)) => Ok(s.clone()),
        Some(_) => Err(invalid(format!(
            "JSON Value: {} not formatted correctly. 'signature_name' key must be a string value.",
            doc.quote()
        ))),
    }
}

fn type_error(v: &Json, d: i32) -> ServeError {
    invalid(format!(
        "JSON Value: {} Type: {} is not of expected type: {}",
        v.quote(),
        v.type_name(),
        dtype_string(d)
    ))
}

fn lossy_error(v: &Json, target: &str) -> ServeError {
    invalid(format!(
        "Cannot convert JSON value: {} to {target} without loss of precision.",
        v.quote()
    ))
}

/// Whether a JSON number fits `digits`-bit-mantissa floats without loss (TF Serving's rule:
/// integers up to 2^digits - 1, decimals within the type's range, non-finite always).
fn lossless(n: Number, digits: u32, max: f64) -> bool {
    let k = (1u64 << digits) - 1;
    match n {
        Number::Double(d) if !d.is_finite() => true,
        Number::Int(i) => i.unsigned_abs() <= k,
        Number::Uint(u) => u <= k,
        Number::Double(d) => d <= max && d >= -max,
    }
}

fn decode_b64(v: &Json) -> Result<Vec<u8>> {
    let Some(text) = v.as_b64() else {
        return Err(invalid(format!(
            "JSON Value: {} not formatted correctly for base64 data",
            v.quote()
        )));
    };
    // absl::Base64Unescape accepts padded and unpadded input.
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine
        .decode(text.trim_end_matches(['\n', '\r', ' ']))
        .map_err(|_| invalid("Unable to base64 decode"))
}

/// Why a JSON number does not fit a tensor's dtype.
enum Refusal {
    /// Not a number TF Serving accepts for the dtype (e.g. a decimal for an int tensor).
    Type,
    /// Does not fit without loss of precision; names the target type.
    Lossy(&'static str),
    /// Not a numeric dtype.
    NotNumeric,
}

/// Appends one JSON number to a tensor of numeric dtype `d` with TF Serving's rules.
fn push_number(n: Number, d: i32, t: &mut tfp::TensorProto) -> std::result::Result<(), Refusal> {
    match d {
        dtype::FLOAT => {
            if !lossless(n, f32::MANTISSA_DIGITS, f32::MAX as f64) {
                return Err(Refusal::Lossy("float"));
            }
            t.float_val.push(n.as_f64() as f32);
        }
        dtype::DOUBLE => {
            if !lossless(n, f64::MANTISSA_DIGITS, f64::MAX) {
                return Err(Refusal::Lossy("double"));
            }
            t.double_val.push(n.as_f64());
        }
        dtype::INT32 | dtype::INT16 | dtype::INT8 | dtype::UINT8 => match n {
            Number::Int(i) if i32::try_from(i).is_ok() => t.int_val.push(i as i32),
            _ => return Err(Refusal::Type),
        },
        dtype::INT64 => match n {
            Number::Int(i) => t.int64_val.push(i),
            _ => return Err(Refusal::Type),
        },
        dtype::UINT32 => match n {
            Number::Int(i) if u32::try_from(i).is_ok() => t.uint32_val.push(i as u32),
            _ => return Err(Refusal::Type),
        },
        dtype::UINT64 => match n {
            Number::Int(i) if i >= 0 => t.uint64_val.push(i as u64),
            Number::Uint(u) => t.uint64_val.push(u),
            _ => return Err(Refusal::Type),
        },
        _ => return Err(Refusal::NotNumeric),
    }
    Ok(())
}

/// Appends one JSON scalar to a tensor of dtype `d`.
fn add_value(v: &Json, d: i32, t: &mut tfp::TensorProto) -> Result<()> {
    match (d, v) {
        (dtype::BOOL, Json::Bool(b)) => t.bool_val.push(*b),
        (dtype::STRING, Json::String(s)) => t.string_val.push(s.as_bytes().to_vec()),
        (dtype::BOOL | dtype::STRING, _) => return Err(type_error(v, d)),
        (_, Json::Number(n)) => match push_number(*n, d, t) {
            Ok(()) => {}
            Err(Refusal::Type) => return Err(type_error(v, d)),
            Err(Refusal::Lossy(target)) => return Err(lossy_error(v, target)),
            Err(Refusal::NotNumeric) => return Err(unimplemented_conversion(v, d)),
        },
        (_, _) if is_numeric(d) => return Err(type_error(v, d)),
        (_, _) => return Err(unimplemented_conversion(v, d)),
    }
    Ok(())
}

fn is_numeric(d: i32) -> bool {
    matches!(
        d,
        dtype::FLOAT
            | dtype::DOUBLE
            | dtype::INT32
            | dtype::INT16
            | dtype::INT8
            | dtype::UINT8
            | dtype::INT64
            | dtype::UINT32
            | dtype::UINT64
    )
}

fn unimplemented_conversion(v: &Json, d: i32) -> ServeError {
    ServeError::new(
        Code::Unimplemented,
        format!(
            "Conversion of JSON Value: {} to type: {}",
            v.quote(),
            dtype_string(d)
        ),
    )
}

/// The shape of a nested list, following first elements.
fn dense_shape(v: &Json, dims: &mut Vec<i64>) {
    if let Json::Array(items) = v {
        dims.push(items.len() as i64);
        if let Some(first) = items.first() {
            dense_shape(first, dims);
        }
    }
}

fn fill_tensor(
    v: &Json,
    level: usize,
    d: i32,
    count: &mut usize,
    t: &mut tfp::TensorProto,
) -> Result<()> {
    let dims: Vec<i64> = t
        .tensor_shape
        .as_ref()
        .map(|s| s.dim.iter().map(|x| x.size).collect())
        .unwrap_or_default();
    fill_level(v, level, &dims, d, count, t)
}

fn fill_level(
    v: &Json,
    level: usize,
    dims: &[i64],
    d: i32,
    count: &mut usize,
    t: &mut tfp::TensorProto,
) -> Result<()> {
    let rank = dims.len();
    let Json::Array(items) = v else {
        if level != rank {
            return Err(invalid(format!(
                "JSON Value: {} found at incorrect level: {} in the JSON DOM. Expected at level: {}",
                v.quote(),
                level + 1,
                rank
            )));
        }
        if matches!(v, Json::Object(_)) {
            if d == dtype::STRING {
                let bytes = decode_b64(v)?;
                t.string_val.push(bytes);
            } else {
                return Err(type_error(v, d));
            }
        } else {
            add_value(v, d, t)?;
        }
        *count += 1;
        return Ok(());
    };
    if level >= rank {
        return Err(invalid(format!(
            "Encountered list at unexpected level: {level} expected < {rank}"
        )));
    }
    if items.len() as i64 != dims[level] {
        return Err(invalid(format!(
            "Encountered list at unexpected size: {} at level: {level} expected size: {}",
            items.len(),
            dims[level]
        )));
    }
    for item in items {
        fill_level(item, level + 1, dims, d, count, t)?;
    }
    Ok(())
}

/// A whole JSON value as one tensor of dtype `d` (columnar format).
pub fn value_tensor(v: &Json, d: i32) -> Result<tfp::TensorProto> {
    let mut dims = Vec::new();
    dense_shape(v, &mut dims);
    let mut t = tfp::TensorProto {
        dtype: d,
        tensor_shape: Some(shape_proto(&dims)),
        ..Default::default()
    };
    let mut count = 0;
    fill_tensor(v, 0, d, &mut count, &mut t)?;
    Ok(t)
}

/// One instance's item appended to the batch tensor `name`.
struct Batch {
    tensor: tfp::TensorProto,
    size: usize,
    dims: Vec<i64>,
}

fn add_instance_item(
    item: &Json,
    name: &str,
    infos: &BTreeMap<String, tfp::TensorInfo>,
    batches: &mut BTreeMap<String, Batch>,
) -> Result<()> {
    let Some(info) = infos.get(name) else {
        return Err(invalid(format!(
            "JSON object: does not have named input: {}",
            json::quote_str(name)
        )));
    };
    let mut dims = Vec::new();
    dense_shape(item, &mut dims);
    let mut count = 0;
    let first = !batches.contains_key(name);
    let batch = batches.entry(name.to_owned()).or_insert_with(|| Batch {
        tensor: tfp::TensorProto {
            dtype: info.dtype,
            ..Default::default()
        },
        size: 0,
        dims: dims.clone(),
    });
    let mut t = std::mem::take(&mut batch.tensor);
    t.tensor_shape = Some(shape_proto(&dims));
    let result = fill_tensor(item, 0, info.dtype, &mut count, &mut t);
    batch.tensor = t;
    result?;
    if first {
        batch.size = count;
    } else if batch.size != count {
        return Err(invalid(format!(
            "Expecting tensor size: {} but got: {count}",
            batch.size
        )));
    } else if batch.dims != dims {
        return Err(invalid(format!(
            "Expecting shape {} but got: {}",
            shape_debug(&batch.dims),
            shape_debug(&dims)
        )));
    }
    Ok(())
}

fn is_element_object(v: &Json) -> bool {
    matches!(v, Json::Object(_)) && v.as_b64().is_none()
}

fn status_text(e: &ServeError) -> String {
    format!("{}: {}", e.code.as_str_name(), e.message)
}

fn from_instances(
    items: &[Json],
    infos: &BTreeMap<String, tfp::TensorInfo>,
) -> Result<BTreeMap<String, tfp::TensorProto>> {
    if !matches!(items[0], Json::Object(_)) && infos.len() > 1 {
        return Err(invalid("instances is a plain list, but expecting list of objects as multiple input tensors required as per tensorinfo_map"));
    }
    let objects = is_element_object(&items[0]);
    let names: BTreeSet<&str> = infos.keys().map(String::as_str).collect();
    let mut batches = BTreeMap::new();
    for (i, elem) in items.iter().enumerate() {
        if objects {
            let Json::Object(members) = elem else {
                return Err(invalid(format!(
                    "Expecting object but got list at item {i} of input list"
                )));
            };
            if elem.as_b64().is_some() {
                return Err(invalid(format!(
                    "Expecting object but got list at item {i} of input list"
                )));
            }
            let mut keys = BTreeSet::new();
            for (name, value) in members {
                keys.insert(name.as_str());
                add_instance_item(value, name, infos, &mut batches).map_err(|e| {
                    invalid(format!(
                        "Failed to process element: {i} key: {} of 'instances' list. Error: {}",
                        json::quote_str(name),
                        status_text(&e)
                    ))
                })?;
            }
            if keys != names {
                return Err(invalid(format!(
                    "Failed to process element: {i} of 'instances' list. JSON object: {} must only have keys: {}",
                    elem.quote(),
                    names.iter().copied().collect::<Vec<_>>().join(",")
                )));
            }
        } else {
            if is_element_object(elem) {
                return Err(invalid(format!(
                    "Expecting value/list but got object at item {i} of input list"
                )));
            }
            let name = infos.keys().next().map(String::as_str).unwrap_or_default();
            add_instance_item(elem, name, infos, &mut batches).map_err(|e| {
                invalid(format!(
                    "Failed to process element: {i} of 'instances' list. Error: {}",
                    status_text(&e)
                ))
            })?;
        }
    }
    Ok(batches
        .into_iter()
        .map(|(name, mut b)| {
            let mut dims = vec![items.len() as i64];
            dims.extend(&b.dims);
            b.tensor.tensor_shape = Some(shape_proto(&dims));
            (name, b.tensor)
        })
        .collect())
}

fn from_inputs(
    v: &Json,
    infos: &BTreeMap<String, tfp::TensorInfo>,
) -> Result<BTreeMap<String, tfp::TensorProto>> {
    let mut out = BTreeMap::new();
    if !matches!(v, Json::Object(_)) || v.as_b64().is_some() {
        if infos.len() > 1 {
            return Err(invalid("inputs is a plain value/list, but expecting an object as multiple input tensors required as per tensorinfo_map"));
        }
        if let Some((name, info)) = infos.iter().next() {
            out.insert(name.clone(), value_tensor(v, info.dtype)?);
        }
        return Ok(out);
    }
    for (name, info) in infos {
        let item = v
            .get(name)
            .ok_or_else(|| invalid(format!("Missing named input: {name} in 'inputs' object.")))?;
        out.insert(name.clone(), value_tensor(item, info.dtype)?);
    }
    Ok(out)
}

/// A predict request body into a `PredictRequest` for `spec` (whose signature name is taken
/// from the body). `inputs_of` gives the signature's inputs once the signature is known.
pub fn predict_request(
    doc: &Json,
    mut spec: sv::ModelSpec,
    inputs_of: impl FnOnce(&sv::ModelSpec) -> Result<BTreeMap<String, tfp::TensorInfo>>,
) -> Result<(sv::PredictRequest, Format)> {
    spec.signature_name = signature_name(doc)?;
    let infos = inputs_of(&spec)?;
    if infos.is_empty() {
        let sig = if spec.signature_name.is_empty() {
            "DEFAULT"
        } else {
            &spec.signature_name
        };
        return Err(invalid(format!(
            "Failed to get input map for signature: {sig}"
        )));
    }
    let instances = doc.get("instances");
    let inputs = doc.get("inputs");
    let (tensors, format) = match (instances, inputs) {
        (Some(_), Some(_)) => {
            return Err(invalid(format!(
                "JSON Value: {} Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ",
                doc.quote()
            )))
        }
        (Some(Json::Array(items)), None) if !items.is_empty() => {
            (from_instances(items, &infos)?, Format::Row)
        }
        (Some(Json::Array(_)), None) => {
            return Err(invalid(format!(
                "JSON Value: {} No values in 'instances' array",
                doc.quote()
            )))
        }
        (Some(_), None) => {
            return Err(invalid(format!(
                "JSON Value: {} Excepting 'instances' to be an list/array",
                doc.quote()
            )))
        }
        (None, Some(v)) => (from_inputs(v, &infos)?, Format::Columnar),
        (None, None) => return Err(invalid("Missing 'inputs' or 'instances' key")),
    };
    Ok((
        sv::PredictRequest {
            model_spec: Some(spec),
            inputs: tensors,
            ..Default::default()
        },
        format,
    ))
}

/// Nested JSON arrays of numbers read in one pass: the values in document order and the dense
/// shape, checked as [`fill_level`] checks it (every list as long as the first one at its level,
/// every value at the same depth).
struct NumberBlock {
    values: Vec<Number>,
    /// Length of the first list met at each level (0 until it closes; lists are never empty).
    dims: Vec<i64>,
    /// Depth of the values, known once the first one is read.
    rank: Option<usize>,
}

/// Deeper lists than this are left to the general reader.
const FAST_MAX_DEPTH: usize = 32;

impl NumberBlock {
    fn new() -> Self {
        NumberBlock {
            values: Vec::new(),
            dims: Vec::new(),
            rank: None,
        }
    }

    /// Reads one value (a number or a non-empty list) at `level`.
    fn read(&mut self, c: &mut json::Cursor, level: usize) -> Option<()> {
        if c.peek() != Some(b'[') {
            let n = c.number()?;
            if *self.rank.get_or_insert(level) != level {
                return None;
            }
            self.values.push(n);
            return Some(());
        }
        if level >= FAST_MAX_DEPTH || self.rank.is_some_and(|r| level >= r) {
            return None;
        }
        c.eat(b'[');
        let mut len = 0i64;
        loop {
            self.read(c, level + 1)?;
            len += 1;
            if !c.eat(b',') {
                break;
            }
        }
        if !c.eat(b']') {
            return None;
        }
        // Lists close innermost first, so the first list of each level records its length
        // here; lists at one level do not overlap, so the first to close is the first met.
        if self.dims.len() <= level {
            self.dims.resize(level + 1, 0);
        }
        if self.dims[level] == 0 {
            self.dims[level] = len;
        }
        (self.dims[level] == len).then_some(())
    }

    /// The dense shape, once at least one value was read.
    fn shape(&self) -> Option<&[i64]> {
        self.rank.map(|r| &self.dims[..r])
    }
}

/// The common predict bodies read straight into the request without a JSON tree: an object with
/// an optional plain `signature_name` and either `instances` (a list of numbers or nested lists)
/// or `inputs` (a number or nested lists), for a signature with one numeric input. `None` for
/// anything else, including every mistake: [`predict_request`] then reads the body and words the
/// error. For the bodies it accepts it gives exactly what [`predict_request`] gives.
pub fn predict_request_fast(
    body: &[u8],
    spec: &sv::ModelSpec,
    inputs_of: impl FnOnce(&sv::ModelSpec) -> Result<BTreeMap<String, tfp::TensorInfo>>,
) -> Option<(sv::PredictRequest, Format)> {
    let mut c = json::Cursor::new(body);
    let mut signature: Option<&str> = None;
    // The block, whether it is columnar, and for `instances` each item's shape.
    let mut data: Option<(NumberBlock, Format, usize)> = None;
    if !c.eat(b'{') {
        return None;
    }
    loop {
        match c.plain_string()? {
            "signature_name" if signature.is_none() => {
                if !c.eat(b':') {
                    return None;
                }
                signature = Some(c.plain_string()?);
            }
            key @ ("instances" | "inputs") if data.is_none() => {
                if !c.eat(b':') {
                    return None;
                }
                let mut block = NumberBlock::new();
                if key == "inputs" {
                    block.read(&mut c, 0)?;
                    data = Some((block, Format::Columnar, 0));
                } else {
                    // Each item's shape is checked alone, then against the first item's.
                    if !c.eat(b'[') {
                        return None;
                    }
                    let mut items = 0;
                    let mut first: Option<Vec<i64>> = None;
                    loop {
                        block.dims.clear();
                        block.rank = None;
                        block.read(&mut c, 0)?;
                        let shape = block.shape()?;
                        match &first {
                            None => first = Some(shape.to_vec()),
                            Some(s) if s == shape => {}
                            Some(_) => return None,
                        }
                        items += 1;
                        if !c.eat(b',') {
                            break;
                        }
                    }
                    if !c.eat(b']') {
                        return None;
                    }
                    data = Some((block, Format::Row, items));
                }
            }
            _ => return None,
        }
        if !c.eat(b',') {
            break;
        }
    }
    if !c.eat(b'}') || !c.at_end() {
        return None;
    }
    let (block, format, items) = data?;
    let mut spec = spec.clone();
    spec.signature_name = signature.unwrap_or_default().to_owned();
    let infos = inputs_of(&spec).ok()?;
    let [(name, info)] = <[_; 1]>::try_from(infos.into_iter().collect::<Vec<_>>()).ok()?;
    let mut dims = block.shape()?.to_vec();
    if format == Format::Row {
        dims.insert(0, items as i64);
    }
    let mut tensor = tfp::TensorProto {
        dtype: info.dtype,
        tensor_shape: Some(shape_proto(&dims)),
        ..Default::default()
    };
    let n = block.values.len();
    match info.dtype {
        dtype::FLOAT => tensor.float_val.reserve_exact(n),
        dtype::DOUBLE => tensor.double_val.reserve_exact(n),
        dtype::INT64 => tensor.int64_val.reserve_exact(n),
        _ => tensor.int_val.reserve_exact(n),
    }
    for n in block.values {
        push_number(n, info.dtype, &mut tensor).ok()?;
    }
    Some((
        sv::PredictRequest {
            model_spec: Some(spec),
            inputs: [(name, tensor)].into(),
            ..Default::default()
        },
        format,
    ))
}

fn feature_error(name: &str, v: &Json) -> ServeError {
    invalid(format!(
        "Feature: {} has element with unexpected JSON type: {}",
        json::quote_str(name),
        v.type_name()
    ))
}

/// The kind of a feature as TF Serving names it.
fn kind_name(f: &tfp::Feature) -> &'static str {
    match &f.kind {
        Some(tfp::feature::Kind::BytesList(_)) => "bytes",
        Some(tfp::feature::Kind::FloatList(_)) => "float",
        Some(tfp::feature::Kind::Int64List(_)) => "int64",
        None => "UNKNOWN",
    }
}

fn incompatible(name: &str, kind: &str) -> ServeError {
    invalid(format!(
        "Unexpected element type in feature: {} expecting type: {kind}",
        json::quote_str(name)
    ))
}

fn bytes_list(f: &mut tfp::Feature) -> Option<&mut Vec<Vec<u8>>> {
    if f.kind.is_none() {
        f.kind = Some(tfp::feature::Kind::BytesList(Default::default()));
    }
    match &mut f.kind {
        Some(tfp::feature::Kind::BytesList(l)) => Some(&mut l.value),
        _ => None,
    }
}

fn float_list(f: &mut tfp::Feature) -> Option<&mut Vec<f32>> {
    if f.kind.is_none() {
        f.kind = Some(tfp::feature::Kind::FloatList(Default::default()));
    }
    match &mut f.kind {
        Some(tfp::feature::Kind::FloatList(l)) => Some(&mut l.value),
        _ => None,
    }
}

fn int64_list(f: &mut tfp::Feature) -> Option<&mut Vec<i64>> {
    if f.kind.is_none() {
        f.kind = Some(tfp::feature::Kind::Int64List(Default::default()));
    }
    match &mut f.kind {
        Some(tfp::feature::Kind::Int64List(l)) => Some(&mut l.value),
        _ => None,
    }
}

/// One JSON value into a feature, with TF Serving's mapping: strings and `{"b64"}` to
/// bytes_list, decimals to float_list, integers and booleans to int64_list. Constant time
/// per value (apart from the value itself), so a feature list is built in linear time.
fn add_feature_value(v: &Json, name: &str, f: &mut tfp::Feature) -> Result<()> {
    // The kind the feature had before this value, named if the value does not fit it.
    let kind = kind_name(f);
    let mismatch = || incompatible(name, kind);
    match v {
        Json::Null | Json::Array(_) => return Err(feature_error(name, v)),
        Json::Bool(b) => int64_list(f).ok_or_else(mismatch)?.push(i64::from(*b)),
        Json::Object(_) => {
            if v.as_b64().is_none() {
                return Err(feature_error(name, v));
            }
            let bytes = decode_b64(v)?;
            bytes_list(f).ok_or_else(mismatch)?.push(bytes);
        }
        Json::String(s) => bytes_list(f)
            .ok_or_else(mismatch)?
            .push(s.as_bytes().to_vec()),
        Json::Number(Number::Double(d)) => {
            let list = float_list(f).ok_or_else(mismatch)?;
            if !lossless(Number::Double(*d), f32::MANTISSA_DIGITS, f32::MAX as f64) {
                return Err(lossy_error(v, "float"));
            }
            list.push(*d as f32);
        }
        Json::Number(Number::Int(i)) => int64_list(f).ok_or_else(mismatch)?.push(*i),
        Json::Number(Number::Uint(_)) => {
            int64_list(f).ok_or_else(mismatch)?;
            return Err(invalid(format!(
                "Feature: {} has uint64 element. Only int64 is supported.",
                json::quote_str(name)
            )));
        }
    }
    Ok(())
}

/// One JSON object of features as a `tf.Example` (the mapping of REST `examples`).
pub fn example_from_json(v: &Json) -> Result<tfp::Example> {
    let Json::Object(members) = v else {
        return Err(invalid(format!(
            "Example must be JSON object but got JSON {}",
            v.type_name()
        )));
    };
    let mut features = BTreeMap::new();
    for (name, content) in members {
        let mut f = tfp::Feature::default();
        match content {
            Json::Array(items) => {
                for item in items {
                    add_feature_value(item, name, &mut f)?;
                }
            }
            other => add_feature_value(other, name, &mut f)?,
        }
        features.insert(name.clone(), f);
    }
    Ok(tfp::Example {
        features: Some(tfp::Features { feature: features }),
    })
}

/// A classify / regress body into the request's `Input` and signature name.
pub fn examples_input(doc: &Json) -> Result<(String, sv::Input)> {
    let signature = signature_name(doc)?;
    let context = doc.get("context").map(example_from_json).transpose()?;
    let examples = match doc.get("examples") {
        None => {
            return Err(invalid(format!(
            "JSON Value: {} When method is classify, key 'examples' is expected and was not found",
            doc.quote()
        )))
        }
        Some(Json::Array(items)) if items.is_empty() => {
            return Err(invalid(format!(
                "JSON Value: {} 'examples' value is an empty array",
                doc.quote()
            )))
        }
        Some(Json::Array(items)) => items
            .iter()
            .map(example_from_json)
            .collect::<Result<Vec<_>>>()?,
        Some(_) => {
            return Err(invalid(format!(
                "JSON Value: {} Expecting 'examples' value to be an list/array",
                doc.quote()
            )))
        }
    };
    let kind = match context {
        Some(context) => sv::input::Kind::ExampleListWithContext(sv::ExampleListWithContext {
            examples,
            context: Some(context),
        }),
        None => sv::input::Kind::ExampleList(sv::ExampleList { examples }),
    };
    Ok((signature, sv::Input { kind: Some(kind) }))
}

/// Writes one element of a tensor.
fn write_value(out: &mut String, t: &tfp::TensorProto, i: usize, as_bytes: bool) -> Result<()> {
    use std::fmt::Write as _;
    let missing = || {
        invalid(format!(
            "Failed to write JSON value for tensor type: {}",
            dtype_string(t.dtype)
        ))
    };
    match t.dtype {
        dtype::FLOAT => json::write_f32(out, *t.float_val.get(i).ok_or_else(missing)?),
        dtype::DOUBLE => json::write_f64(out, *t.double_val.get(i).ok_or_else(missing)?),
        dtype::INT32 | dtype::INT16 | dtype::INT8 | dtype::UINT8 | dtype::UINT16 => {
            let _ = write!(out, "{}", t.int_val.get(i).ok_or_else(missing)?);
        }
        dtype::INT64 => {
            let _ = write!(out, "{}", t.int64_val.get(i).ok_or_else(missing)?);
        }
        dtype::UINT32 => {
            let _ = write!(out, "{}", t.uint32_val.get(i).ok_or_else(missing)?);
        }
        dtype::UINT64 => {
            let _ = write!(out, "{}", t.uint64_val.get(i).ok_or_else(missing)?);
        }
        dtype::BOOL => out.push_str(if *t.bool_val.get(i).ok_or_else(missing)? {
            "true"
        } else {
            "false"
        }),
        dtype::STRING => {
            let s = t.string_val.get(i).ok_or_else(missing)?;
            if as_bytes {
                out.push_str("{\"b64\":");
                json::write_string(out, &base64::engine::general_purpose::STANDARD.encode(s));
                out.push('}');
            } else {
                json::write_string(out, &String::from_utf8_lossy(s));
            }
        }
        _ => return Err(missing()),
    }
    Ok(())
}

/// Writes dimensions `dim..` of a tensor starting at element `*offset`.
fn write_values(
    out: &mut String,
    t: &tfp::TensorProto,
    dims: &[i64],
    dim: usize,
    as_bytes: bool,
    offset: &mut usize,
) -> Result<()> {
    if dim >= dims.len() {
        write_value(out, t, *offset, as_bytes)?;
        *offset += 1;
        return Ok(());
    }
    out.push('[');
    for i in 0..dims[dim].max(0) {
        if i > 0 {
            out.push(',');
        }
        write_values(out, t, dims, dim + 1, as_bytes, offset)?;
    }
    out.push(']');
    Ok(())
}

fn dims_of(t: &tfp::TensorProto) -> Vec<i64> {
    t.tensor_shape
        .as_ref()
        .map(|s| s.dim.iter().map(|d| d.size).collect())
        .unwrap_or_default()
}

/// Outputs named `*_bytes` holding strings are written as `{"b64": ...}`.
fn is_bytes(name: &str, t: &tfp::TensorProto) -> bool {
    t.dtype == dtype::STRING && name.ends_with("_bytes")
}

/// A predict response's outputs as `{"predictions": ...}` or `{"outputs": ...}`.
pub fn predict_response(
    outputs: &BTreeMap<String, tfp::TensorProto>,
    format: Format,
) -> Result<String> {
    if outputs.is_empty() {
        return Err(invalid("Cannot convert empty tensor map to JSON"));
    }
    let mut out = String::with_capacity(64);
    let objects = outputs.len() > 1;
    match format {
        Format::Row => {
            let mut batch = 0i64;
            for (name, t) in outputs {
                let dims = dims_of(t);
                let Some(&b) = dims.first() else {
                    return Err(invalid(format!(
                        "Tensor name: {name} has no shape information "
                    )));
                };
                if b < 1 {
                    return Err(invalid(format!(
                        "Tensor name: {name} has invalid batch size: {b}"
                    )));
                }
                if batch != 0 && batch != b {
                    return Err(invalid(format!(
                        "Tensor name: {name} has inconsistent batch size: {b} expecting: {batch}"
                    )));
                }
                batch = b;
            }
            let prepared: Vec<(&String, &tfp::TensorProto, Vec<i64>, bool)> = outputs
                .iter()
                .map(|(n, t)| (n, t, dims_of(t), is_bytes(n, t)))
                .collect();
            let mut offsets = vec![0usize; prepared.len()];
            out.push_str("{\"predictions\":[");
            for item in 0..batch {
                if item > 0 {
                    out.push(',');
                }
                if objects {
                    out.push('{');
                }
                for (k, (name, t, dims, as_bytes)) in prepared.iter().enumerate() {
                    if objects {
                        if k > 0 {
                            out.push(',');
                        }
                        json::write_string(&mut out, name);
                        out.push(':');
                    }
                    write_values(&mut out, t, dims, 1, *as_bytes, &mut offsets[k])?;
                }
                if objects {
                    out.push('}');
                }
            }
            out.push_str("]}");
        }
        Format::Columnar => {
            out.push_str("{\"outputs\":");
            if objects {
                out.push('{');
            }
            for (k, (name, t)) in outputs.iter().enumerate() {
                if objects {
                    if k > 0 {
                        out.push(',');
                    }
                    json::write_string(&mut out, name);
                    out.push(':');
                }
                let mut offset = 0;
                write_values(&mut out, t, &dims_of(t), 0, is_bytes(name, t), &mut offset)?;
            }
            if objects {
                out.push('}');
            }
            out.push('}');
        }
    }
    Ok(out)
}

/// `{"results": [[[label, score], ...], ...]}`.
pub fn classification_response(result: &sv::ClassificationResult) -> Result<String> {
    if result.classifications.is_empty() {
        return Err(invalid(
            "Cannot convert empty ClassificationResults to JSON",
        ));
    }
    let mut out = String::from("{\"results\":[");
    for (i, c) in result.classifications.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        for (j, class) in c.classes.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push('[');
            json::write_string(&mut out, &class.label);
            out.push(',');
            json::write_f32(&mut out, class.score);
            out.push(']');
        }
        out.push(']');
    }
    out.push_str("]}");
    Ok(out)
}

/// `{"results": [v, ...]}`.
pub fn regression_response(result: &sv::RegressionResult) -> Result<String> {
    if result.regressions.is_empty() {
        return Err(invalid("Cannot convert empty RegressionResults to JSON"));
    }
    let mut out = String::from("{\"results\":[");
    for (i, r) in result.regressions.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json::write_f32(&mut out, r.value);
    }
    out.push_str("]}");
    Ok(out)
}

/// The status response as protobuf JSON (int64 as strings, enums by name, defaults printed).
pub fn status_response(r: &sv::GetModelStatusResponse) -> String {
    let items: Vec<serde_json::Value> = r
        .model_version_status
        .iter()
        .map(|s| {
            let state = sv::model_version_status::State::try_from(s.state)
                .map(|x| x.as_str_name())
                .unwrap_or("UNKNOWN");
            let status = s.status.clone().unwrap_or_default();
            let code = Code::try_from(status.error_code)
                .map(|c| c.as_str_name())
                .unwrap_or("UNKNOWN");
            serde_json::json!({
                "version": s.version.to_string(),
                "state": state,
                "status": {"error_code": code, "error_message": status.error_message},
            })
        })
        .collect();
    let doc = serde_json::json!({ "model_version_status": items });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

fn shape_json(shape: Option<&tfp::TensorShapeProto>) -> serde_json::Value {
    let shape = shape.cloned().unwrap_or_default();
    serde_json::json!({
        "dim": shape.dim.iter().map(|d| serde_json::json!({"size": d.size.to_string(), "name": d.name})).collect::<Vec<_>>(),
        "unknown_rank": shape.unknown_rank,
    })
}

fn tensor_info_json(info: &tfp::TensorInfo) -> serde_json::Value {
    use tfp::tensor_info::Encoding;
    let mut v = serde_json::json!({
        "dtype": dtype_name(info.dtype),
        "tensor_shape": shape_json(info.tensor_shape.as_ref()),
    });
    match &info.encoding {
        Some(Encoding::Name(n)) => v["name"] = serde_json::json!(n),
        Some(Encoding::CooSparse(c)) => {
            v["coo_sparse"] = serde_json::json!({
                "values_tensor_name": c.values_tensor_name,
                "indices_tensor_name": c.indices_tensor_name,
                "dense_shape_tensor_name": c.dense_shape_tensor_name,
            })
        }
        Some(Encoding::CompositeTensor(_)) => v["composite_tensor"] = serde_json::json!({}),
        None => {}
    }
    v
}

/// A TensorProto as protobuf JSON (int64 as strings, bytes as base64, empty fields left out).
fn tensor_proto_json(t: &tfp::TensorProto) -> serde_json::Value {
    use base64::engine::general_purpose::STANDARD;
    let mut v = serde_json::json!({
        "dtype": dtype_name(t.dtype),
        "tensor_shape": shape_json(t.tensor_shape.as_ref()),
    });
    let mut put = |key: &str, value: serde_json::Value, empty: bool| {
        if !empty {
            v[key] = value;
        }
    };
    put(
        "tensor_content",
        serde_json::json!(STANDARD.encode(&t.tensor_content)),
        t.tensor_content.is_empty(),
    );
    put(
        "float_val",
        serde_json::json!(t.float_val),
        t.float_val.is_empty(),
    );
    put(
        "double_val",
        serde_json::json!(t.double_val),
        t.double_val.is_empty(),
    );
    put(
        "int_val",
        serde_json::json!(t.int_val),
        t.int_val.is_empty(),
    );
    put(
        "string_val",
        serde_json::json!(t
            .string_val
            .iter()
            .map(|s| STANDARD.encode(s))
            .collect::<Vec<_>>()),
        t.string_val.is_empty(),
    );
    put(
        "int64_val",
        serde_json::json!(t.int64_val.iter().map(i64::to_string).collect::<Vec<_>>()),
        t.int64_val.is_empty(),
    );
    put(
        "bool_val",
        serde_json::json!(t.bool_val),
        t.bool_val.is_empty(),
    );
    v
}

fn signature_json(sig: &tfp::SignatureDef) -> serde_json::Value {
    let map =
        |m: &BTreeMap<String, tfp::TensorInfo>| -> serde_json::Map<String, serde_json::Value> {
            m.iter()
                .map(|(k, v)| (k.clone(), tensor_info_json(v)))
                .collect()
        };
    serde_json::json!({
        "inputs": map(&sig.inputs),
        "outputs": map(&sig.outputs),
        "method_name": sig.method_name,
        "defaults": sig
            .defaults
            .iter()
            .map(|(k, v)| (k.clone(), tensor_proto_json(v)))
            .collect::<serde_json::Map<String, serde_json::Value>>(),
    })
}

/// The metadata response: `{"model_spec": ..., "metadata": {"signature_def": ...}}`.
pub fn metadata_response(r: &sv::GetModelMetadataResponse) -> Result<String> {
    use prost::Message;
    let spec = r.model_spec.clone().unwrap_or_default();
    let version = match spec.version_choice {
        Some(sv::model_spec::VersionChoice::Version(v)) => v.to_string(),
        _ => String::new(),
    };
    let map = r
        .metadata
        .get("signature_def")
        .map(|any| sv::SignatureDefMap::decode(any.value.as_slice()))
        .transpose()
        .map_err(|e| ServeError::new(Code::Internal, format!("Failed to decode metadata: {e}")))?
        .unwrap_or_default();
    let sigs: serde_json::Map<String, serde_json::Value> = map
        .signature_def
        .iter()
        .map(|(k, v)| (k.clone(), signature_json(v)))
        .collect();
    let doc = serde_json::json!({
        "model_spec": {"name": spec.name, "signature_name": spec.signature_name, "version": version},
        "metadata": {"signature_def": {"signature_def": sigs}},
    });
    Ok(serde_json::to_string_pretty(&doc).unwrap_or_default())
}

/// TF Serving's error body.
pub fn error_body(message: &str) -> String {
    let mut out = String::from("{ \"error\": ");
    json::write_string(&mut out, message);
    out.push_str(" }");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn infos(pairs: &[(&str, i32)]) -> BTreeMap<String, tfp::TensorInfo> {
        pairs
            .iter()
            .map(|(n, d)| {
                (
                    n.to_string(),
                    tfp::TensorInfo {
                        dtype: *d,
                        ..Default::default()
                    },
                )
            })
            .collect()
    }

    fn predict(body: &str, pairs: &[(&str, i32)]) -> Result<(sv::PredictRequest, Format)> {
        let doc = parse_body(body.as_bytes())?;
        predict_request(&doc, sv::ModelSpec::default(), |_| Ok(infos(pairs)))
    }

    #[test]
    fn fast_predict_reader_agrees_with_the_general_one() {
        let bodies = [
            r#"{"instances": [[[1.5], [2]], [[3], [4e2]]]}"#,
            r#"{"signature_name": "serving_default", "instances": [1, -2, 3]}"#,
            r#"{"instances": [[1, 2, 3]], "signature_name": "s"}"#,
            r#"{"inputs": [[0.25, NaN], [-Infinity, 7]]}"#,
            r#"{"inputs": 5}"#,
            r#" { "instances" : [ [ 1 , 2 ] , [ 3 , 4 ] ] } "#,
            r#"{"instances": [[1, 2], [3]]}"#,
            r#"{"instances": [[[1]], [2]]}"#,
            r#"{"instances": [18446744073709551615, 16777217, 1e39]}"#,
        ];
        let dtypes = [
            dtype::FLOAT,
            dtype::DOUBLE,
            dtype::INT32,
            dtype::INT64,
            dtype::UINT8,
            dtype::UINT64,
            dtype::BOOL,
            dtype::STRING,
        ];
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for body in bodies {
            let b = body.as_bytes();
            cases.push(b.to_vec());
            for i in 0..b.len() {
                cases.push(b[..i].to_vec());
                cases.push([&b[..i], &b[i + 1..]].concat());
                for r in b"[],01.-e\"{} N:x" {
                    let mut m = b.to_vec();
                    m[i] = *r;
                    cases.push(m);
                }
            }
        }
        let mut taken = 0;
        for d in dtypes {
            for body in &cases {
                let spec = sv::ModelSpec::default();
                let Some(fast) = predict_request_fast(body, &spec, |_| Ok(infos(&[("x", d)])))
                else {
                    continue;
                };
                taken += 1;
                let text = String::from_utf8_lossy(body);
                let general = parse_body(body).and_then(|doc| {
                    predict_request(&doc, spec.clone(), |_| Ok(infos(&[("x", d)])))
                });
                // Compared encoded, where NaN equals NaN.
                let encoded = |(r, f): (sv::PredictRequest, Format)| (r.encode_to_vec(), f);
                assert_eq!(
                    Ok(encoded(fast)),
                    general.map(encoded).map_err(|e| e.message),
                    "{text} as {d}"
                );
            }
        }
        assert!(taken > 1000, "the fast reader took only {taken} bodies");
        // It takes the bodies clients send most, and leaves the rest to the general reader.
        let spec = sv::ModelSpec::default();
        let floats = |_: &sv::ModelSpec| Ok(infos(&[("x", dtype::FLOAT)]));
        for body in &bodies[..6] {
            assert!(
                predict_request_fast(body.as_bytes(), &spec, floats).is_some(),
                "{body}"
            );
        }
        for body in &bodies[6..8] {
            assert!(
                predict_request_fast(body.as_bytes(), &spec, floats).is_none(),
                "{body}"
            );
        }
        let two = |_: &sv::ModelSpec| Ok(infos(&[("a", dtype::FLOAT), ("b", dtype::FLOAT)]));
        assert!(predict_request_fast(bodies[0].as_bytes(), &spec, two).is_none());
    }

    #[test]
    fn row_format_batches_instances() {
        let (req, format) = predict(
            r#"{"instances": [[1.0, 2], [3, 4.5]]}"#,
            &[("x", dtype::FLOAT)],
        )
        .unwrap();
        assert_eq!(format, Format::Row);
        let t = &req.inputs["x"];
        assert_eq!(dims_of(t), vec![2, 2]);
        assert_eq!(t.float_val, vec![1.0, 2.0, 3.0, 4.5]);
    }

    #[test]
    fn row_format_named_inputs_and_b64() {
        let (req, _) = predict(
            r#"{"instances": [{"a": 1, "s": {"b64": "aGk="}}, {"a": 2, "s": "yo"}]}"#,
            &[("a", dtype::INT64), ("s", dtype::STRING)],
        )
        .unwrap();
        assert_eq!(req.inputs["a"].int64_val, vec![1, 2]);
        assert_eq!(
            req.inputs["s"].string_val,
            vec![b"hi".to_vec(), b"yo".to_vec()]
        );
        assert_eq!(dims_of(&req.inputs["s"]), vec![2]);
    }

    #[test]
    fn columnar_format() {
        let (req, format) = predict(
            r#"{"inputs": {"a": [[1, 2]], "b": true}}"#,
            &[("a", dtype::INT32), ("b", dtype::BOOL)],
        )
        .unwrap();
        assert_eq!(format, Format::Columnar);
        assert_eq!(dims_of(&req.inputs["a"]), vec![1, 2]);
        assert_eq!(dims_of(&req.inputs["b"]), Vec::<i64>::new());
        assert_eq!(req.inputs["b"].bool_val, vec![true]);
    }

    #[test]
    fn predict_errors_match_tf_serving() {
        type Case<'a> = (&'a str, &'a [(&'a str, i32)], &'a str);
        let cases: &[Case] = &[
            (r#"{"x": 1}"#, &[("x", dtype::FLOAT)], "Missing 'inputs' or 'instances' key"),
            (r#"{"instances": [["a"]]}"#, &[("x", dtype::FLOAT)], "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: \"a\" Type: String is not of expected type: float"),
            (r#"{"instances": [[1], [1, 2]]}"#, &[("x", dtype::FLOAT)], "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 1 but got: 2"),
            (r#"{"instances": [[1, 2], [3]]}"#, &[("x", dtype::FLOAT)], "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 2 but got: 1"),
            (r#"{"inputs": [[1, 2], [3]]}"#, &[("x", dtype::FLOAT)], "Encountered list at unexpected size: 1 at level: 1 expected size: 2"),
            (r#"{"inputs": {"b64": "!!"}}"#, &[("x", dtype::STRING)], "Unable to base64 decode"),
            (r#"{"inputs": 16777217}"#, &[("x", dtype::FLOAT)], "Cannot convert JSON value: 16777217 to float without loss of precision."),
            (r#"{"inputs": {"a": 1}}"#, &[("a", dtype::INT32), ("b", dtype::INT32)], "Missing named input: b in 'inputs' object."),
            (r#"{"instances": [1], "inputs": [1]}"#, &[("x", dtype::FLOAT)], "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist "),
            (r#"{"instances": []}"#, &[("x", dtype::FLOAT)], "No values in 'instances' array"),
            (r#"{"signature_name": 1, "instances": [1]}"#, &[("x", dtype::FLOAT)], "'signature_name' key must be a string value."),
            (r#"[1]"#, &[("x", dtype::FLOAT)], "Is not object"),
        ];
        for (body, pairs, want) in cases {
            let err = predict(body, pairs).unwrap_err();
            assert_eq!(err.code, Code::InvalidArgument, "{body}");
            assert!(err.message.ends_with(want), "{body}: {}", err.message);
        }
    }

    #[test]
    fn examples_follow_tf_serving_value_mapping() {
        let doc = parse_body(br#"{"context": {"c": "ctx"}, "examples": [{"s": "a", "b": {"b64": "AAE="}, "f": [1.5, NaN], "i": [1, true, false]}]}"#).unwrap();
        let (sig, input) = examples_input(&doc).unwrap();
        assert_eq!(sig, "");
        let Some(sv::input::Kind::ExampleListWithContext(list)) = input.kind else {
            panic!("expected context");
        };
        let f = &list.examples[0].features.as_ref().unwrap().feature;
        use tfp::feature::Kind;
        assert!(matches!(&f["s"].kind, Some(Kind::BytesList(l)) if l.value == vec![b"a".to_vec()]));
        assert!(matches!(&f["b"].kind, Some(Kind::BytesList(l)) if l.value == vec![vec![0u8, 1]]));
        assert!(
            matches!(&f["f"].kind, Some(Kind::FloatList(l)) if l.value[0] == 1.5 && l.value[1].is_nan())
        );
        assert!(matches!(&f["i"].kind, Some(Kind::Int64List(l)) if l.value == vec![1, 1, 0]));
        let mixed = parse_body(br#"{"examples": [{"x": [1.5, 2]}]}"#).unwrap();
        assert_eq!(
            examples_input(&mixed).unwrap_err().message,
            "Unexpected element type in feature: x expecting type: float"
        );
        let missing = parse_body(br#"{"instances": []}"#).unwrap();
        assert!(examples_input(&missing)
            .unwrap_err()
            .message
            .ends_with("When method is classify, key 'examples' is expected and was not found"));
    }

    #[test]
    fn long_feature_lists_and_messages_cost_what_the_body_costs() {
        // Each value used to copy the list built so far: 300k values took minutes.
        let values = vec!["1"; 300_000].join(",");
        let doc =
            parse_body(format!(r#"{{"examples": [{{"x": [{values}]}}]}}"#).as_bytes()).unwrap();
        let (_, input) = examples_input(&doc).unwrap();
        let Some(sv::input::Kind::ExampleList(list)) = input.kind else {
            panic!("expected a list");
        };
        let f = &list.examples[0].features.as_ref().unwrap().feature["x"];
        assert!(
            matches!(&f.kind, Some(tfp::feature::Kind::Int64List(l)) if l.value.len() == 300_000)
        );
        // A message quoting a deep, wide body stays short (it was 4 bytes per level per value).
        let body = format!(
            "{}{}{}",
            "[".repeat(400),
            vec!["0"; 100_000].join(","),
            "]".repeat(400)
        );
        let e = parse_body(body.as_bytes()).unwrap_err();
        assert!(
            e.message.starts_with("JSON Value: [\n    [\n"),
            "{}",
            e.message
        );
        assert!(
            e.message.len() < 2 * json::QUOTE_LIMIT,
            "{}",
            e.message.len()
        );
        let e = predict(
            &format!(r#"{{"instances": [{{"{}": 1}}]}}"#, "k".repeat(100_000)),
            &[("x", dtype::FLOAT)],
        )
        .unwrap_err();
        assert!(e.message.len() < 1000, "{}", e.message);
    }

    #[test]
    fn responses_are_written_as_tf_serving_does() {
        let t = |name: &str, dims: &[i64], vals: Vec<f32>| {
            (
                name.to_owned(),
                tfp::TensorProto {
                    dtype: dtype::FLOAT,
                    tensor_shape: Some(shape_proto(dims)),
                    float_val: vals,
                    ..Default::default()
                },
            )
        };
        let one = BTreeMap::from([t("y", &[2], vec![2.5, f32::NAN])]);
        assert_eq!(
            predict_response(&one, Format::Row).unwrap(),
            r#"{"predictions":[2.5,NaN]}"#
        );
        assert_eq!(
            predict_response(&one, Format::Columnar).unwrap(),
            r#"{"outputs":[2.5,NaN]}"#
        );
        let two = BTreeMap::from([t("a", &[1, 2], vec![1.0, 0.1]), t("b", &[1], vec![3.0])]);
        assert_eq!(
            predict_response(&two, Format::Row).unwrap(),
            r#"{"predictions":[{"a":[1.0,0.1],"b":3.0}]}"#
        );
        let bytes = BTreeMap::from([(
            "out_bytes".to_owned(),
            tfp::TensorProto {
                dtype: dtype::STRING,
                tensor_shape: Some(shape_proto(&[1])),
                string_val: vec![vec![0xff, 0]],
                ..Default::default()
            },
        )]);
        assert_eq!(
            predict_response(&bytes, Format::Columnar).unwrap(),
            r#"{"outputs":[{"b64":"/wA="}]}"#
        );
    }
}
