//! Model warmup, as TensorFlow Serving does it: after a version loads and before it becomes
//! available, the requests in its `assets.extra/tf_serving_warmup_requests` (a TFRecord file of
//! `PredictionLog`s, at most 1000) are replayed on it, so the first real requests do not pay
//! for TensorFlow's lazy initialisation. A warmup request that fails makes the load fail. The
//! file must be a regular file of at most [`files::WARMUP_FILE_LIMIT`] bytes (a FIFO or a device in
//! its place fails the load instead of blocking it).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use prost::Message;

use super::error::{Code, ServeError};
use super::runner::{Call, Runner};
use super::servable::Servable;
use crate::files;
use crate::proto::tensorflow::serving as sv;
use crate::savedmodel::tfrecord;

pub use crate::savedmodel::WARMUP_FILE;

/// The most records TF Serving replays; a file with more is an error.
pub const MAX_RECORDS: usize = 1000;

fn fail(code: Code, message: String) -> ServeError {
    ServeError::new(code, message)
}

/// The warmup a model manager runs on each version it loads, on the server's runner.
pub struct Warmup {
    runner: Arc<Runner>,
    iterations: u32,
}

impl Warmup {
    /// Warmup on `runner`, each request replayed `iterations` times
    /// (`--num_request_iterations_for_warmup`; 0: once).
    pub fn new(runner: Arc<Runner>, iterations: u32) -> Self {
        Warmup {
            runner,
            iterations: iterations.max(1),
        }
    }

    /// Replays the version's warmup file if it has one; returns the number of requests
    /// replayed. Records are read and replayed one at a time, as TF Serving does. Errors carry
    /// TF Serving's code and a message naming the file.
    pub fn run(&self, servable: &Arc<Servable>, dir: &Path) -> Result<u64, ServeError> {
        let path: PathBuf = dir.join(WARMUP_FILE);
        let started = Instant::now();
        let shown = path.display();
        let unreadable = |message: String| {
            // TF Serving times a warmup whose file cannot be read, with the error.
            self.runner.metrics().warmup_read(
                dir,
                Some((Code::DataLoss, &message)),
                started.elapsed(),
            );
            fail(Code::DataLoss, message)
        };
        let (file, size) = match files::open_regular(&path) {
            Ok(opened) => opened,
            Err(e) if e.is_not_found() => return Ok(0),
            Err(e) => return Err(unreadable(format!("cannot read the warmup requests: {e}"))),
        };
        if size > files::WARMUP_FILE_LIMIT {
            let e = files::FileError::TooLarge {
                path: path.clone(),
                size,
                limit: files::WARMUP_FILE_LIMIT,
                what: "a warmup file",
            };
            return Err(fail(Code::ResourceExhausted, e.to_string()));
        }
        let mut reader = tfrecord::Reader::new(std::io::BufReader::new(file), size);
        let mut n: u64 = 0;
        loop {
            let record = match reader.next_record() {
                Ok(Some(record)) => record,
                Ok(None) => break,
                Err(tfrecord::ReadError::Io(e)) => {
                    return Err(unreadable(format!(
                        "cannot read the warmup requests '{shown}': {e}"
                    )))
                }
                Err(tfrecord::ReadError::Format(e)) => {
                    return Err(unreadable(format!(
                        "the warmup requests '{shown}' are not a valid TFRecord file: {e}"
                    )))
                }
            };
            if n == MAX_RECORDS as u64 {
                return Err(fail(
                    Code::InvalidArgument,
                    format!(
                        "Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {shown}"
                    ),
                ));
            }
            let i = n;
            let log = sv::PredictionLog::decode(record.as_slice()).map_err(|e| {
                fail(
                    Code::DataLoss,
                    format!("warmup record {i} in '{shown}' is not a PredictionLog: {e}"),
                )
            })?;
            // Each request is replayed --num_request_iterations_for_warmup times (once when 0).
            for _ in 1..self.iterations {
                self.replay(servable, log.clone()).map_err(|e| {
                    fail(
                        e.code,
                        format!("warmup request {i} in '{shown}' failed: {}", e.message),
                    )
                })?;
            }
            self.replay(servable, log).map_err(|e| {
                fail(
                    e.code,
                    format!("warmup request {i} in '{shown}' failed: {}", e.message),
                )
            })?;
            n += 1;
        }
        self.runner
            .metrics()
            .warmup_read(dir, None, started.elapsed());
        self.runner
            .metrics()
            .warmup_records(&servable.name, servable.version, n);
        tracing::info!(
            model = %servable.name,
            version = servable.version,
            "Finished reading warmup data for model at {}. Number of warmup records read: {n}. Elapsed time (microseconds): {}.",
            shown,
            started.elapsed().as_micros()
        );
        Ok(n)
    }

    fn replay(&self, servable: &Arc<Servable>, log: sv::PredictionLog) -> Result<(), ServeError> {
        use sv::prediction_log::LogType;
        let missing = || ServeError::invalid("the log has no request");
        match log.log_type {
            Some(LogType::PredictLog(l)) => {
                let request = l.request.ok_or_else(missing)?;
                self.runner.predict(Call::LOCAL, servable, &request)?;
            }
            Some(LogType::ClassifyLog(l)) => {
                let request = l.request.ok_or_else(missing)?;
                self.runner.classify(Call::LOCAL, servable, &request)?;
            }
            Some(LogType::RegressLog(l)) => {
                let request = l.request.ok_or_else(missing)?;
                self.runner.regress(Call::LOCAL, servable, &request)?;
            }
            Some(LogType::MultiInferenceLog(l)) => {
                let request = l.request.ok_or_else(missing)?;
                self.runner
                    .multi_inference(Call::LOCAL, servable, &request)?;
            }
            Some(LogType::SessionRunLog(_)) | Some(LogType::PredictStreamedLog(_)) | None => {
                return Err(ServeError::new(
                    Code::Unimplemented,
                    "Unsupported log_type for warmup (use predict_log, classify_log, regress_log or multi_inference_log)",
                ));
            }
        }
        Ok(())
    }
}
