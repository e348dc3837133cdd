//! Model warmup, as TensorFlow Serving does it: after a version loads and before it becomes
//! available, the requests in its `assets.extra/tf_serving_warmup_requests` (a TFRecord file of
//! `PredictionLog`s, at most 1000) are replayed on it, so the first real requests do not pay
//! for TensorFlow's lazy initialisation. A warmup request that fails makes the load fail.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use prost::Message;

use super::core::{Core, ServeError};
use super::models::Servable;
use crate::proto::tensorflow::error::Code;
use crate::proto::tensorflow::serving as sv;
use crate::savedmodel::tfrecord;

/// Where a SavedModel keeps its warmup requests.
pub const WARMUP_FILE: &str = "assets.extra/tf_serving_warmup_requests";

/// The most records TF Serving replays; a file with more is an error.
pub const MAX_RECORDS: usize = 1000;

fn fail(code: Code, message: String) -> (i32, String) {
    (code as i32, message)
}

impl Core {
    /// Replays the version's warmup file if it has one; returns the number of requests
    /// replayed. Errors carry TF Serving's code and a message naming the file.
    pub fn warmup(&self, servable: &Arc<Servable>, dir: &Path) -> Result<u64, (i32, String)> {
        let path: PathBuf = dir.join(WARMUP_FILE);
        if !path.is_file() {
            return Ok(0);
        }
        let started = Instant::now();
        let shown = path.display();
        let records = tfrecord::read(&path)
            .map_err(|e| {
                fail(
                    Code::DataLoss,
                    format!("cannot read the warmup requests '{shown}': {e}"),
                )
            })
            .and_then(|read| {
                read.map_err(|e| {
                    fail(
                        Code::DataLoss,
                        format!("the warmup requests '{shown}' are not a valid TFRecord file: {e}"),
                    )
                })
            })
            .inspect_err(|(_, message)| {
                // TF Serving times a warmup whose file cannot be read, with the error.
                self.metrics()
                    .warmup_read(dir, Some((Code::DataLoss, message)), started.elapsed());
            })?;
        if records.len() > MAX_RECORDS {
            return Err(fail(
                Code::InvalidArgument,
                format!("Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {shown}"),
            ));
        }
        for (i, record) in records.iter().enumerate() {
            let log = sv::PredictionLog::decode(record.as_slice()).map_err(|e| {
                fail(
                    Code::DataLoss,
                    format!("warmup record {i} in '{shown}' is not a PredictionLog: {e}"),
                )
            })?;
            self.replay(servable, log).map_err(|e| {
                fail(
                    e.code,
                    format!("warmup request {i} in '{shown}' failed: {}", e.message),
                )
            })?;
        }
        let n = records.len() as u64;
        self.metrics().warmup_read(dir, None, started.elapsed());
        self.metrics()
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
                self.predict_on(servable, &l.request.ok_or_else(missing)?)?;
            }
            Some(LogType::ClassifyLog(l)) => {
                self.classify_on(servable, &l.request.ok_or_else(missing)?)?;
            }
            Some(LogType::RegressLog(l)) => {
                self.regress_on(servable, &l.request.ok_or_else(missing)?)?;
            }
            Some(LogType::MultiInferenceLog(l)) => {
                self.multi_inference_on(servable, &l.request.ok_or_else(missing)?)?;
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
