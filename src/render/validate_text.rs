//! `smtool validate` for people: grouped by model, then signature, with a summary at the end.

use std::io::Write;

use super::plural;

use crate::signature::RESERVED_KEYS;
use crate::validate::{Finding, ModelResult, Status, ValidateReport};

fn finding_line(out: &mut dyn Write, indent: &str, f: &Finding) -> std::io::Result<()> {
    writeln!(
        out,
        "{indent}{:<7} {} {}: {}",
        f.severity.name(),
        f.rule.id(),
        f.name,
        f.message
    )
}

fn model(out: &mut dyn Write, m: &ModelResult) -> std::io::Result<()> {
    let status = match m.status {
        Status::Pass => "PASS",
        Status::Fail => "FAIL",
    };
    match &m.tags {
        Some(tags) => writeln!(out, "{status} {} (tag-set '{}')", m.path, tags.join(","))?,
        None => writeln!(out, "{status} {}", m.path)?,
    }
    for f in m.findings.iter().filter(|f| f.signature.is_none()) {
        finding_line(out, "  ", f)?;
    }
    for s in &m.signatures {
        if RESERVED_KEYS.contains(&s.key.as_str()) {
            continue;
        }
        let endpoints: Vec<String> = s
            .endpoints
            .iter()
            .map(|e| format!(":{}", e.name()))
            .collect();
        writeln!(
            out,
            "  signature '{}' ({}): TensorFlow {}, TF Serving serves {}",
            s.key,
            if s.method_name.is_empty() {
                "no method"
            } else {
                &s.method_name
            },
            if s.valid { "valid" } else { "invalid" },
            if endpoints.is_empty() {
                "nothing".to_owned()
            } else {
                endpoints.join(" ")
            }
        )?;
        for f in m
            .findings
            .iter()
            .filter(|f| f.signature.as_deref() == Some(&s.key))
        {
            finding_line(out, "    ", f)?;
        }
    }
    // Findings about reserved keys, or signatures the model lacks (--require-signature, warmup).
    let listed = |k: &str| {
        m.signatures
            .iter()
            .any(|s| s.key == k && !RESERVED_KEYS.contains(&k))
    };
    let mut others: Vec<&str> = m
        .findings
        .iter()
        .filter_map(|f| f.signature.as_deref())
        .filter(|k| !listed(k))
        .collect();
    others.dedup();
    for key in others {
        writeln!(out, "  signature '{key}'")?;
        for f in m
            .findings
            .iter()
            .filter(|f| f.signature.as_deref() == Some(key))
        {
            finding_line(out, "    ", f)?;
        }
    }
    Ok(())
}

/// `1 passed, 1 failed; 1 error, 0 warnings, 3 infos`: the summary's counts after the models'.
pub(super) fn summary_counts(report: &ValidateReport) -> String {
    let s = &report.summary;
    format!(
        "{} passed, {} failed; {}, {}, {}",
        s.passed,
        s.failed,
        plural(s.errors, "error", "errors"),
        plural(s.warnings, "warning", "warnings"),
        plural(s.infos, "info", "infos"),
    )
}

/// Writes the report.
pub fn write(out: &mut dyn Write, report: &ValidateReport) -> std::io::Result<()> {
    for m in &report.models {
        model(out, m)?;
    }
    writeln!(
        out,
        "\n{}: {}{}",
        plural(report.summary.models, "model", "models"),
        summary_counts(report),
        if report.strict {
            " (--strict: warnings fail)"
        } else {
            ""
        }
    )
}
