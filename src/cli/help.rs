//! `-h` and `--help`: `-h` prints one-line summaries, `--help` the whole text.
//!
//! clap shows a doc comment's first paragraph with `-h` and the whole comment with `--help`, but
//! most options are documented in one paragraph of several sentences. Rather than split every doc
//! comment by hand, the command tree is adjusted once at start-up: an option or subcommand
//! without a separate long help gets its first sentence as the `-h` text and keeps the whole
//! paragraph for `--help`.

use clap::{Arg, Command, CommandFactory, FromArgMatches};

use super::Cli;

impl Cli {
    /// Parses the process arguments (exiting with clap's message on an error, or after help).
    pub fn parse_args() -> Self {
        let matches = command().get_matches();
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

/// The command tree with `-h` summaries, for parsing and for tests of the help text.
pub fn command() -> Command {
    with_summaries(Cli::command())
}

fn with_summaries(cmd: Command) -> Command {
    let cmd = cmd.mut_args(summarize_arg).mut_subcommands(with_summaries);
    match (cmd.get_about(), cmd.get_long_about()) {
        (Some(about), None) => {
            let text = about.to_string();
            match first_sentence(&text) {
                Some(summary) => {
                    let summary = summary.to_owned();
                    cmd.about(summary).long_about(text)
                }
                None => cmd,
            }
        }
        _ => cmd,
    }
}

fn summarize_arg(arg: Arg) -> Arg {
    if arg.get_long_help().is_some() {
        return arg;
    }
    let Some(text) = arg.get_help().map(|h| h.to_string()) else {
        return arg;
    };
    match first_sentence(&text) {
        Some(summary) => {
            let summary = summary.to_owned();
            arg.help(summary).long_help(text)
        }
        None => arg,
    }
}

/// The first sentence of `text` when more follows it: up to the first `. ` outside parentheses,
/// brackets and backquotes that does not close an abbreviation such as "e.g.".
fn first_sentence(text: &str) -> Option<&str> {
    let mut depth = 0usize;
    let mut in_code = false;
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'`' => in_code = !in_code,
            b'(' | b'[' if !in_code => depth += 1,
            b')' | b']' if !in_code => depth = depth.saturating_sub(1),
            b'.' if !in_code && depth == 0 && bytes.get(i + 1) == Some(&b' ') => {
                let head = &text[..i];
                let abbreviation = ["e.g", "i.e", "etc", "vs"]
                    .iter()
                    .any(|a| head.ends_with(a));
                if !abbreviation {
                    return Some(head);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sentence_cases() {
        let cases = [
            ("One sentence", None),
            ("One sentence.", None),
            ("First. Second", Some("First")),
            (
                "Only this (e.g. `a. b`). More",
                Some("Only this (e.g. `a. b`)"),
            ),
            ("Set it, e.g. to 3. More", Some("Set it, e.g. to 3")),
            (
                "Port (0 picks one. Really). Same host",
                Some("Port (0 picks one. Really)"),
            ),
            ("Default [default: 1. x]", None),
        ];
        for (text, want) in cases {
            assert_eq!(first_sentence(text), want, "{text:?}");
        }
    }

    /// `-h` is a summary of one sentence per option and subcommand; `--help` keeps the rest.
    #[test]
    #[cfg(feature = "serve")]
    fn short_help_is_a_summary_and_long_help_the_whole_text() {
        let mut cmd = command();
        cmd.build();
        let serve = cmd.find_subcommand_mut("serve").expect("serve subcommand");
        let short = serve.render_help().to_string();
        let long = serve.render_long_help().to_string();
        assert!(short.len() < long.len(), "{short}");
        assert!(
            long.contains("Same --host as the REST API"),
            "the long help keeps every sentence:\n{long}"
        );
        assert!(
            !short.contains("Same --host as the REST API"),
            "the short help keeps only the first sentence:\n{short}"
        );
    }
}
