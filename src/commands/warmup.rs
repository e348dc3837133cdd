//! `smtool warmup`: writes TF Serving's warmup file (`assets.extra/tf_serving_warmup_requests`,
//! a TFRecord of `PredictionLog`s) into a new copy of a model, from REST request bodies (read by
//! the same codec as `smtool serve`) or from synthetic requests built from the signatures'
//! dtypes and shapes. The source model is never modified.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use prost::Message;
use serde::Serialize;

use super::add_classify::{self, EditOptions, Source, Start};
use crate::proto::tensorflow as tf;
use crate::proto::tensorflow::serving as sv;
use crate::proto_ext::{dims, dtype_name, dtype_size, shape_proto};
use crate::savedmodel::write;
use crate::savedmodel::{self, tfrecord, SavedModelDir};
use crate::serve::codec;
use crate::serve::limits::MAX_RANK;
use crate::serve::warmup::{MAX_RECORDS, WARMUP_FILE};
use crate::signature::{self, Endpoint, DEFAULT_SIGNATURE_KEY, RESERVED_KEYS};

/// The largest request body read from a file (the default request limit of `smtool serve`).
pub const MAX_REQUEST_BYTES: u64 = 64 << 20;

/// The most bytes of request bodies read in one run.
pub const MAX_TOTAL_REQUEST_BYTES: u64 = 256 << 20;

/// The most bytes all synthetic inputs of one run may take (a string element counts as
/// [`STRING_ELEMENT_BYTES`], what holding it costs).
pub const MAX_SYNTHETIC_BYTES: u64 = 64 << 20;
const STRING_ELEMENT_BYTES: u64 = 32;

/// A request body file and the endpoint it is for (`None`: from its keys and the signature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFile {
    pub endpoint: Option<Endpoint>,
    pub path: PathBuf,
}

impl std::str::FromStr for RequestFile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        for e in Endpoint::ALL {
            if let Some(path) = s.strip_prefix(&format!("{}=", e.name())) {
                return Ok(RequestFile {
                    endpoint: Some(e),
                    path: PathBuf::from(path),
                });
            }
        }
        Ok(RequestFile {
            endpoint: None,
            path: PathBuf::from(s),
        })
    }
}

/// Where the requests come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requests {
    /// REST request bodies, one per file.
    Files(Vec<RequestFile>),
    /// One synthetic predict request per signature (these keys, or every servable one).
    FromSignatures { keys: Vec<String>, batch: usize },
}

/// Validated options of `smtool warmup`.
#[derive(Debug, Clone)]
pub struct WarmupOptions {
    pub edit: EditOptions,
    /// The meta graph whose signatures are used; `None`: the only one, else `serve`.
    pub tag_set: Option<Vec<String>>,
    pub requests: Requests,
    /// `model_spec.name` of the logged requests; `None`: the model's directory name.
    pub model_name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Source(#[from] add_classify::Error),
    /// A source in object storage that could not be used.
    #[error(transparent)]
    Storage(#[from] crate::storage::Error),
    #[error(transparent)]
    Model(#[from] savedmodel::Error),
    #[error(transparent)]
    Write(#[from] write::WriteError),
    #[error("cannot read request '{}': {source}", path.display())]
    ReadRequest {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "request '{}' is {bytes} bytes, more than the {MAX_REQUEST_BYTES} a request may have",
        path.display()
    )]
    RequestTooLarge { path: PathBuf, bytes: u64 },
    #[error(
        "the requests up to '{}' take more than {MAX_TOTAL_REQUEST_BYTES} bytes together; \
         record fewer or smaller ones",
        path.display()
    )]
    RequestsTooLarge { path: PathBuf },
    #[error("request '{}': {message}", path.display())]
    BadRequest { path: PathBuf, message: String },
    #[error(
        "{count} requests are more than the {MAX_RECORDS} TF Serving replays (it refuses the \
         whole file); give fewer"
    )]
    TooMany { count: usize },
    #[error("{0}")]
    Synthetic(String),
    #[error("--batch must be at least 1")]
    ZeroBatch,
    #[error("--batch {0} is more than a tensor's dimension may be (2^63 - 1)")]
    BatchTooLarge(usize),
}

/// One request written.
#[derive(Debug, Clone, Serialize)]
pub struct RecordReport {
    pub endpoint: Endpoint,
    /// The signature it calls (`serving_default` when the body names none).
    pub signature: String,
    /// The request file, or `synthetic`.
    pub from: String,
    /// Examples or batch rows in the request.
    pub batch: usize,
}

/// A signature `--from-signature` left out, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub signature: String,
    pub reason: String,
}

/// What `warmup` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct WarmupReport {
    pub smtool_version: &'static str,
    /// The new SavedModel directory.
    pub dst: String,
    /// The warmup file inside it, relative to it.
    pub file: &'static str,
    pub source_version: Option<i64>,
    pub new_version: Option<i64>,
    pub records: Vec<RecordReport>,
    pub skipped: Vec<Skipped>,
    pub files: write::WriteSummary,
}

impl std::fmt::Display for WarmupReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "wrote '{}' with {} warmup request{} in {}",
            self.dst,
            self.records.len(),
            if self.records.len() == 1 { "" } else { "s" },
            self.file
        )?;
        match (self.source_version, self.new_version) {
            (Some(from), Some(to)) => {
                writeln!(f, "  new version {to}, copied from version {from}")?
            }
            (Some(from), None) => writeln!(f, "  copied from version {from}")?,
            _ => {}
        }
        for (i, r) in self.records.iter().enumerate() {
            writeln!(
                f,
                "  {i}: :{} signature '{}', {} {} ({})",
                r.endpoint.name(),
                r.signature,
                r.batch,
                match (r.endpoint, r.batch) {
                    (Endpoint::Predict, 1) => "row",
                    (Endpoint::Predict, _) => "rows",
                    (_, 1) => "example",
                    _ => "examples",
                },
                r.from
            )?;
        }
        for s in &self.skipped {
            writeln!(f, "  skipped signature '{}': {}", s.signature, s.reason)?;
        }
        writeln!(
            f,
            "  {} files linked, {} copied{}",
            self.files.files_linked,
            self.files.files_copied,
            if self.files.dropped_fingerprint {
                "; stale fingerprint.pb not kept"
            } else {
                ""
            }
        )
    }
}

/// Runs `warmup`: builds every request (checking it against the model) before anything is
/// written, then writes the copy atomically.
pub fn run(opts: &WarmupOptions) -> Result<WarmupReport, Error> {
    // Without object storage built in, `Start` has only the local case.
    #[cfg_attr(
        not(feature = "storage"),
        allow(clippy::infallible_destructuring_match)
    )]
    let Source {
        model,
        version: source_version,
        dst,
        new_version,
    } = match add_classify::start(&opts.edit)? {
        Start::Local(source) => source,
        #[cfg(feature = "storage")]
        Start::Remote(url) => return Ok(super::remote::warmup(opts, &url)?),
    };
    let meta = model.meta_graph(opts.tag_set.as_deref())?;
    let model_name = opts.model_name.clone().unwrap_or_else(|| {
        let dir = match new_version.or(source_version) {
            Some(_) => opts.edit.src.as_path(),
            None => model.dir.as_path(),
        };
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into())
    });
    let spec = |signature: &str| sv::ModelSpec {
        name: model_name.clone(),
        signature_name: signature.to_owned(),
        ..Default::default()
    };

    // Each log is kept serialized: as parsed messages, a body of many small examples would
    // take many times its size until the file is written.
    let mut logs: Vec<Vec<u8>> = Vec::new();
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    match &opts.requests {
        Requests::Files(files) => {
            if files.len() > MAX_RECORDS {
                return Err(Error::TooMany { count: files.len() });
            }
            let mut budget = MAX_TOTAL_REQUEST_BYTES;
            for file in files {
                let (log, record) = from_file(file, meta, &spec, &mut budget)?;
                logs.push(log.encode_to_vec());
                records.push(record);
            }
        }
        Requests::FromSignatures { keys, batch } => {
            if *batch == 0 {
                return Err(Error::ZeroBatch);
            }
            if i64::try_from(*batch).is_err() {
                return Err(Error::BatchTooLarge(*batch));
            }
            let explicit = !keys.is_empty();
            let keys: Vec<&str> = if explicit {
                keys.iter().map(String::as_str).collect()
            } else {
                meta.signature_def
                    .keys()
                    .map(String::as_str)
                    .filter(|k| !RESERVED_KEYS.contains(k))
                    .collect()
            };
            if keys.len() > MAX_RECORDS {
                return Err(Error::TooMany { count: keys.len() });
            }
            let mut budget = MAX_SYNTHETIC_BYTES;
            for key in keys {
                let sig =
                    meta.signature_def
                        .get(key)
                        .ok_or_else(|| savedmodel::Error::NoSignature {
                            path: model.dir.clone(),
                            tags: savedmodel::tag_list(meta).join(","),
                            wanted: key.to_owned(),
                            available: meta.signature_def.keys().cloned().collect(),
                        })?;
                match synthetic(key, sig, *batch, &mut budget) {
                    Ok(inputs) => {
                        let log = predict_log(sv::PredictRequest {
                            model_spec: Some(spec(key)),
                            inputs,
                            ..Default::default()
                        });
                        logs.push(log.encode_to_vec());
                        records.push(RecordReport {
                            endpoint: Endpoint::Predict,
                            signature: key.to_owned(),
                            from: "synthetic".into(),
                            batch: *batch,
                        });
                    }
                    Err(reason) if explicit => {
                        return Err(Error::Synthetic(format!(
                        "--from-signature cannot build a request for signature '{key}': {reason}"
                    )))
                    }
                    Err(reason) => skipped.push(Skipped {
                        signature: key.to_owned(),
                        reason,
                    }),
                }
            }
            if logs.is_empty() {
                return Err(Error::Synthetic(format!(
                    "--from-signature found no signature to build a request for ({}); give \
                     request bodies with --request FILE",
                    skipped
                        .iter()
                        .map(|s| format!("'{}': {}", s.signature, s.reason))
                        .collect::<Vec<_>>()
                        .join("; ")
                )));
            }
        }
    }

    let file = tfrecord::encode(logs.iter().map(Vec::as_slice));
    let SavedModelDir {
        dir, saved_model, ..
    } = model;
    let files = write::write_saved_model_with(
        &dir,
        &saved_model,
        &dst,
        &opts.edit.write_options(new_version.is_some()),
        &[(WARMUP_FILE, &file)],
    )?;
    Ok(WarmupReport {
        smtool_version: env!("CARGO_PKG_VERSION"),
        dst: dst.display().to_string(),
        file: WARMUP_FILE,
        source_version,
        new_version,
        records,
        skipped,
        files,
    })
}

fn predict_log(request: sv::PredictRequest) -> sv::PredictionLog {
    sv::PredictionLog {
        log_type: Some(sv::prediction_log::LogType::PredictLog(sv::PredictLog {
            request: Some(request),
            response: None,
        })),
        ..Default::default()
    }
}

/// Reads a request body, within its own limit and what is left of the run's `budget`.
fn read_request(path: &Path, budget: &mut u64) -> Result<Vec<u8>, Error> {
    let read_err = |source| Error::ReadRequest {
        path: path.to_path_buf(),
        source,
    };
    // Checked once opened, so that a FIFO put in its place after a look cannot block the run.
    let (file, size) = crate::files::open_regular(path).map_err(|e| match e {
        crate::files::FileError::NotRegular { kind, .. } => read_err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("it is {kind}, not a regular file"),
        )),
        crate::files::FileError::Io { source, .. } => read_err(source),
        other => read_err(std::io::Error::other(other.to_string())),
    })?;
    if size > MAX_REQUEST_BYTES {
        return Err(Error::RequestTooLarge {
            path: path.to_path_buf(),
            bytes: size,
        });
    }
    // Read at most the limit, in case the file grows meanwhile.
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_REQUEST_BYTES + 1),
        &mut bytes,
    )
    .map_err(read_err)?;
    if bytes.len() as u64 > MAX_REQUEST_BYTES {
        return Err(Error::RequestTooLarge {
            path: path.to_path_buf(),
            bytes: bytes.len() as u64,
        });
    }
    *budget = budget
        .checked_sub(bytes.len() as u64)
        .ok_or_else(|| Error::RequestsTooLarge {
            path: path.to_path_buf(),
        })?;
    Ok(bytes)
}

/// A REST request body into its `PredictionLog`, checked against the signature it calls the way
/// TF Serving checks it when the request arrives.
fn from_file(
    file: &RequestFile,
    meta: &tf::MetaGraphDef,
    spec: &dyn Fn(&str) -> sv::ModelSpec,
    budget: &mut u64,
) -> Result<(sv::PredictionLog, RecordReport), Error> {
    let bad = |message: String| Error::BadRequest {
        path: file.path.clone(),
        message,
    };
    let body = read_request(&file.path, budget)?;
    let doc = codec::parse_body(&body).map_err(|e| bad(e.message))?;
    let named = codec::signature_name(&doc).map_err(|e| bad(e.message))?;
    let key = if named.is_empty() {
        DEFAULT_SIGNATURE_KEY
    } else {
        named.as_str()
    };
    let sig = meta.signature_def.get(key).ok_or_else(|| {
        bad(format!(
            "signature '{key}' is not in the model (signatures: {})",
            meta.signature_def
                .keys()
                .filter(|k| !RESERVED_KEYS.contains(&k.as_str()))
                .map(|k| format!("'{k}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let endpoint = match file.endpoint {
        Some(e) => e,
        None if doc.get("examples").is_none() => Endpoint::Predict,
        None => match signature::examples_endpoint(key, sig) {
            Ok(e) => e,
            Err(signature::ExamplesEndpoint::Both) => {
                return Err(bad(format!(
                    "signature '{key}' serves both :classify and :regress; say which with \
                     --request classify={0} or --request regress={0}",
                    file.path.display()
                )))
            }
            Err(signature::ExamplesEndpoint::Neither(problems)) => {
                return Err(bad(format!(
                    "the body has 'examples', but signature '{key}' serves neither :classify nor \
                     :regress ({})",
                    problems.join("; ")
                )))
            }
        },
    };
    let problems = signature::serving_problems(key, sig, endpoint);
    if !problems.is_empty() {
        return Err(bad(format!(
            "TF Serving would refuse it: signature '{key}' cannot be served under :{} (it {})",
            endpoint.name(),
            problems.join("; ")
        )));
    }
    use sv::prediction_log::LogType;
    let (log_type, batch) = match endpoint {
        Endpoint::Predict => {
            let (request, _) =
                codec::predict_request(&doc, spec(&named), |_| Ok(sig.inputs.clone()))
                    .map_err(|e| bad(e.message))?;
            let batch = request
                .inputs
                .values()
                .next()
                .and_then(|t| t.tensor_shape.as_ref())
                .and_then(|s| s.dim.first())
                .map_or(1, |d| usize::try_from(d.size).unwrap_or(1));
            (
                LogType::PredictLog(sv::PredictLog {
                    request: Some(request),
                    response: None,
                }),
                batch,
            )
        }
        Endpoint::Classify | Endpoint::Regress => {
            let (_, input) = codec::examples_input(&doc).map_err(|e| bad(e.message))?;
            let batch = match &input.kind {
                Some(sv::input::Kind::ExampleList(l)) => l.examples.len(),
                Some(sv::input::Kind::ExampleListWithContext(l)) => l.examples.len(),
                None => 0,
            };
            let log_type = if endpoint == Endpoint::Classify {
                LogType::ClassifyLog(sv::ClassifyLog {
                    request: Some(sv::ClassificationRequest {
                        model_spec: Some(spec(&named)),
                        input: Some(input),
                    }),
                    response: None,
                })
            } else {
                LogType::RegressLog(sv::RegressLog {
                    request: Some(sv::RegressionRequest {
                        model_spec: Some(spec(&named)),
                        input: Some(input),
                    }),
                    response: None,
                })
            };
            (log_type, batch)
        }
    };
    Ok((
        sv::PredictionLog {
            log_type: Some(log_type),
            ..Default::default()
        },
        RecordReport {
            endpoint,
            signature: key.to_owned(),
            from: file.path.display().to_string(),
            batch,
        },
    ))
}

/// Inputs of zeros (empty strings for DT_STRING) shaped like the signature's: the batch
/// dimension is `batch`, other unknown dimensions 1. Signatures fed serialized tf.Examples are
/// left out: empty examples would fail their parsing, and so the load. Sizes are checked against
/// what is left of the run's `budget` before anything is allocated.
fn synthetic(
    key: &str,
    sig: &tf::SignatureDef,
    batch: usize,
    budget: &mut u64,
) -> Result<BTreeMap<String, tf::TensorProto>, String> {
    let served = signature::endpoints(key, sig);
    if served.contains(&Endpoint::Classify) || served.contains(&Endpoint::Regress) {
        return Err(
            "it takes serialized tf.Examples, which cannot be made up without knowing their \
             features; give a request with --request FILE"
                .into(),
        );
    }
    if sig.inputs.is_empty() {
        return Err("it has no inputs".into());
    }
    let mut inputs = BTreeMap::new();
    for (name, info) in &sig.inputs {
        if crate::proto_ext::tensor_name(info).is_none() {
            return Err(format!("input '{name}' is not a dense tensor"));
        }
        let shape = match dims(info.tensor_shape.as_ref()) {
            None => vec![batch as i64],
            Some(d) => d
                .iter()
                .enumerate()
                .map(|(i, &n)| match (i, n) {
                    (0, n) if n < 0 => batch as i64,
                    (_, n) if n < 0 => 1,
                    (_, n) => n,
                })
                .collect(),
        };
        if shape.len() > MAX_RANK {
            return Err(format!(
                "input '{name}' has {} dimensions; TensorFlow allows at most {MAX_RANK}",
                shape.len()
            ));
        }
        let elements = shape
            .iter()
            .try_fold(1u64, |acc, &n| acc.checked_mul(u64::try_from(n).ok()?))
            .ok_or_else(|| format!("input '{name}' has an impossible shape"))?;
        let string = info.dtype == tf::DataType::DtString as i32;
        let width = match dtype_size(info.dtype) {
            Some(w) => w,
            None if string => STRING_ELEMENT_BYTES,
            None => {
                return Err(format!(
                    "input '{name}' is {}, which has no synthetic value",
                    dtype_name(info.dtype)
                ))
            }
        };
        let bytes = elements.saturating_mul(width);
        *budget = budget.checked_sub(bytes).ok_or_else(|| {
            format!(
                "input '{name}' shaped {shape:?} would take {bytes} bytes, more than the \
                 {MAX_SYNTHETIC_BYTES} all synthetic requests may take together; use a smaller \
                 --batch or fewer signatures"
            )
        })?;
        let mut tensor = tf::TensorProto {
            dtype: info.dtype,
            tensor_shape: Some(shape_proto(&shape)),
            ..Default::default()
        };
        // Both fit in memory: the budget bounds them.
        let n = usize::try_from(elements).map_err(|_| format!("input '{name}' is too large"))?;
        if string {
            tensor.string_val = vec![Vec::new(); n];
        } else {
            tensor.tensor_content = vec![0; n * width as usize];
        }
        inputs.insert(name.clone(), tensor);
    }
    Ok(inputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_request_limit_reads_as_one_sentence() {
        let err = Error::RequestsTooLarge {
            path: "b.json".into(),
        };
        assert_eq!(
            err.to_string(),
            format!(
                "the requests up to 'b.json' take more than {MAX_TOTAL_REQUEST_BYTES} bytes \
                 together; record fewer or smaller ones"
            )
        );
    }

    #[test]
    fn request_file_prefixes() {
        let r: RequestFile = "classify=a.json".parse().unwrap();
        assert_eq!(r.endpoint, Some(Endpoint::Classify));
        assert_eq!(r.path, PathBuf::from("a.json"));
        let r: RequestFile = "dir/predict.json".parse().unwrap();
        assert_eq!(
            (r.endpoint, r.path),
            (None, PathBuf::from("dir/predict.json"))
        );
    }
}
