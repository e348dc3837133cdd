//! `smtool validate`: runs every rule over the models under the given paths (see
//! [`crate::validate`]) and decides the exit code.

pub use crate::validate::{
    run, Finding, ModelResult, RequiredSignature, Severity, Status, ValidateOptions, ValidateReport,
};

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
