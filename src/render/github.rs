//! `smtool validate --format github`: GitHub Actions workflow commands (`::error file=...::msg`),
//! one per finding, so findings show as annotations on the run and the pull request.

use std::io::Write;

use crate::validate::{Finding, Severity, ValidateReport};

/// Escapes the message part of a workflow command.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property value (`file=`, `title=`) of a workflow command.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

fn command(severity: Severity, fails: bool) -> &'static str {
    match severity {
        Severity::Error => "error",
        _ if fails => "error",
        Severity::Warning => "warning",
        Severity::Info => "notice",
    }
}

fn annotation(out: &mut dyn Write, file: &str, f: &Finding, strict: bool) -> std::io::Result<()> {
    let mut place = String::new();
    if let Some(sig) = &f.signature {
        place.push_str(&format!("signature '{sig}': "));
    }
    writeln!(
        out,
        "::{} file={},title={}::{}",
        command(f.severity, f.fails(strict)),
        escape_property(file),
        escape_property(&format!("{} {} ({})", f.rule.id(), f.name, f.model)),
        escape_data(&format!("{}: {place}{}", f.model, f.message))
    )
}

/// Writes one annotation per finding and a plain summary line.
pub fn write(out: &mut dyn Write, report: &ValidateReport) -> std::io::Result<()> {
    for m in &report.models {
        let file = m.graph_file.as_deref().unwrap_or(&m.path);
        for f in &m.findings {
            annotation(out, file, f, report.strict)?;
        }
    }
    writeln!(
        out,
        "smtool validate: {}, {}",
        super::plural(report.summary.models, "model", "models"),
        super::validate_text::summary_counts(report)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_command_escaping() {
        assert_eq!(escape_data("50%\na\r"), "50%25%0Aa%0D");
        assert_eq!(escape_property("a:b,c%"), "a%3Ab%2Cc%25");
    }
}
