//! `smtool validate --format junit`: JUnit XML for CI systems that show test reports. One test
//! suite per model; one test case per rule family, failing when the family has failing findings.

use std::io::Write;

use crate::validate::{Family, ModelResult, ValidateReport};

/// Escapes text for XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn finding_text(f: &crate::validate::Finding) -> String {
    let mut s = format!("{} {} {}", f.severity.name(), f.rule.id(), f.name);
    if let Some(sig) = &f.signature {
        s.push_str(&format!(" [signature '{sig}']"));
    }
    s.push_str(&format!(": {}", f.message));
    s
}

/// A failing test case's `<failure>`: its type, message and body.
pub struct Failure<'a> {
    pub kind: &'a str,
    pub message: &'a str,
    pub body: String,
}

/// One `<testcase>`, failing with `failure`, with `notes` as its system-out.
pub fn test_case(
    out: &mut dyn Write,
    classname: &str,
    name: &str,
    failure: Option<Failure<'_>>,
    notes: &[String],
) -> std::io::Result<()> {
    writeln!(
        out,
        "    <testcase classname=\"{classname}\" name=\"{name}\">"
    )?;
    if let Some(f) = failure {
        writeln!(
            out,
            "      <failure type=\"{}\" message=\"{}\">{}</failure>",
            f.kind,
            escape(f.message),
            escape(&f.body)
        )?;
    }
    if !notes.is_empty() {
        writeln!(
            out,
            "      <system-out>{}</system-out>",
            escape(&notes.join("\n"))
        )?;
    }
    writeln!(out, "    </testcase>")
}

fn suite(out: &mut dyn Write, m: &ModelResult, strict: bool) -> std::io::Result<usize> {
    let failing = |family: Family| {
        m.findings
            .iter()
            .filter(move |f| f.family == family && f.fails(strict))
    };
    let failures = Family::ALL
        .iter()
        .filter(|&&fam| failing(fam).next().is_some())
        .count();
    let name = escape(&m.path);
    writeln!(
        out,
        "  <testsuite name=\"{name}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">",
        Family::ALL.len()
    )?;
    for family in Family::ALL {
        let fails: Vec<_> = failing(family).collect();
        let failure = fails.first().map(|first| Failure {
            kind: first.rule.id(),
            message: &first.message,
            body: fails
                .iter()
                .map(|f| finding_text(f))
                .collect::<Vec<_>>()
                .join("\n"),
        });
        let notes: Vec<String> = m
            .findings
            .iter()
            .filter(|f| f.family == family && !f.fails(strict))
            .map(finding_text)
            .collect();
        test_case(out, &name, family.name(), failure, &notes)?;
    }
    writeln!(out, "  </testsuite>")?;
    Ok(failures)
}

/// Writes the whole report as one `<testsuites>` document.
pub fn write(out: &mut dyn Write, report: &ValidateReport) -> std::io::Result<()> {
    let tests = report.models.len() * Family::ALL.len();
    let failures: usize = report
        .models
        .iter()
        .map(|m| {
            Family::ALL
                .iter()
                .filter(|&&fam| {
                    m.findings
                        .iter()
                        .any(|f| f.family == fam && f.fails(report.strict))
                })
                .count()
        })
        .sum();
    writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
    writeln!(
        out,
        "<testsuites name=\"smtool validate\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">"
    )?;
    for m in &report.models {
        suite(out, m, report.strict)?;
    }
    writeln!(out, "</testsuites>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escaping() {
        assert_eq!(
            escape("a<b>&\"c\" 'd'\u{1}"),
            "a&lt;b&gt;&amp;&quot;c&quot; &apos;d&apos;\u{fffd}"
        );
    }
}
