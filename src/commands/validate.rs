//! `smtool validate`: runs every rule over the models under the given paths (see
//! [`crate::validate`]) and decides the exit code.

pub use crate::validate::{
    Finding, ModelResult, RequiredSignature, Severity, Status, ValidateOptions, ValidateReport,
};

/// Validates every model under `opts.paths`, local or in object storage (see
/// [`crate::validate::run`]).
pub fn run(opts: &ValidateOptions) -> Result<ValidateReport, crate::validate::ValidateError> {
    #[cfg(feature = "storage")]
    for path in &opts.paths {
        if crate::storage::remote_url(path)?.is_some() {
            return super::remote::validate(opts);
        }
    }
    #[cfg(not(feature = "storage"))]
    for path in &opts.paths {
        crate::storage::remote_url(path)?;
    }
    crate::validate::run(opts)
}

/// Exit code when some model has failing findings.
pub const EXIT_FINDINGS: u8 = 1;

/// 0 when nothing fails, 1 when some model has failing findings.
pub fn exit_code(report: &ValidateReport) -> u8 {
    if report.failed() {
        EXIT_FINDINGS
    } else {
        0
    }
}
