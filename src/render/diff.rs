//! `smtool diff` reports as text for people, GitHub Actions annotations and JUnit XML (with the
//! escaping of validate's renderers); `--json` is [`super::json`].

use std::io::Write;

use super::plural;

use crate::commands::diff::{Change, DiffReport, Family, Grade, Side};

fn side_text(s: &Side, tags: &[String]) -> String {
    let mut parts = Vec::new();
    if let Some(v) = s.version {
        parts.push(format!("version {v}"));
    }
    parts.push(format!("tag-set '{}'", tags.join(",")));
    if !s.tensorflow_version.is_empty() {
        parts.push(format!("TensorFlow {}", s.tensorflow_version));
    }
    format!("{} ({})", s.path, parts.join(", "))
}

/// Where a change is, for a line of text: `signature 'serving_default': ` (changes of whole
/// signatures name theirs in the message).
fn place(c: &Change) -> String {
    match &c.signature {
        Some(sig) if c.kind.family() != Family::Signatures => format!("signature '{sig}': "),
        _ => String::new(),
    }
}

fn summary_line(report: &DiffReport) -> String {
    let s = &report.summary;
    if report.changes.is_empty() {
        return "no change to the serving contract".to_owned();
    }
    format!(
        "{}, {}: {}",
        plural(s.breaking, "breaking change", "breaking changes"),
        plural(s.compatible, "compatible change", "compatible changes"),
        if report.breaking() {
            "clients of OLD can fail with NEW"
        } else {
            "clients of OLD keep working with NEW"
        }
    )
}

/// Readable text: both sides, one line per change (breaking first), a summary.
pub fn text(out: &mut dyn Write, report: &DiffReport) -> std::io::Result<()> {
    writeln!(out, "OLD {}", side_text(&report.old, &report.tag_set))?;
    writeln!(out, "NEW {}", side_text(&report.new, &report.tag_set))?;
    for c in &report.changes {
        writeln!(out, "  {:<10} {}{}", c.grade.name(), place(c), c.message)?;
    }
    writeln!(out, "\n{}", summary_line(report))
}

/// GitHub Actions workflow commands: an error per breaking change, a notice per compatible one,
/// on NEW's graph file.
pub fn github(out: &mut dyn Write, report: &DiffReport) -> std::io::Result<()> {
    use super::github::{escape_data, escape_property};
    for c in &report.changes {
        let command = match c.grade {
            Grade::Breaking => "error",
            Grade::Compatible => "notice",
        };
        writeln!(
            out,
            "::{command} file={},title={}::{}",
            escape_property(&report.new.graph_file),
            escape_property(&format!(
                "{} {} ({})",
                c.grade.name(),
                c.kind.id(),
                report.new.path
            )),
            escape_data(&format!("{}{}", place(c), c.message))
        )?;
    }
    writeln!(
        out,
        "smtool diff: {} -> {}: {}",
        report.old.path,
        report.new.path,
        summary_line(report)
    )
}

fn change_text(c: &Change) -> String {
    format!(
        "{} {}: {}{}",
        c.grade.name(),
        c.kind.id(),
        place(c),
        c.message
    )
}

/// JUnit XML: one test suite (OLD -> NEW), one test case per family of changes, failing when the
/// family has a breaking change; compatible changes are its system-out.
pub fn junit(out: &mut dyn Write, report: &DiffReport) -> std::io::Result<()> {
    use super::junit::{escape, test_case, Failure};
    let of = |family: Family, grade: Grade| {
        report
            .changes
            .iter()
            .filter(move |c| c.kind.family() == family && c.grade == grade)
    };
    let failures = Family::ALL
        .iter()
        .filter(|&&f| of(f, Grade::Breaking).next().is_some())
        .count();
    let tests = Family::ALL.len();
    let name = escape(&format!("{} -> {}", report.old.path, report.new.path));
    writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
    writeln!(
        out,
        "<testsuites name=\"smtool diff\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">"
    )?;
    writeln!(
        out,
        "  <testsuite name=\"{name}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">"
    )?;
    for family in Family::ALL {
        let breaking: Vec<&Change> = of(family, Grade::Breaking).collect();
        let first_message = breaking
            .first()
            .map(|c| format!("{}{}", place(c), c.message));
        let kind = breaking.first().map(|c| c.kind.id()).unwrap_or_default();
        let failure = first_message.as_deref().map(|message| Failure {
            kind: &kind,
            message,
            body: breaking
                .iter()
                .map(|c| change_text(c))
                .collect::<Vec<_>>()
                .join("\n"),
        });
        let notes: Vec<String> = of(family, Grade::Compatible).map(change_text).collect();
        test_case(out, &name, family.name(), failure, &notes)?;
    }
    writeln!(out, "  </testsuite>")?;
    writeln!(out, "</testsuites>")
}
