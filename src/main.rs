//! The `smtool` binary: parse arguments, run one command, print, map the outcome to an exit code.

#![deny(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use smtool::cli::{Cli, Command, ValidateFormat};
use smtool::commands::{add_classify, diff, inspect, validate};
#[cfg(feature = "serve")]
use smtool::commands::{run as run_cmd, warmup};
use smtool::render;

/// Exit code when smtool could not do what was asked.
const EXIT_ERROR: u8 = 2;

fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<u8> {
    match cli.command {
        Command::Inspect(args) => {
            let report = inspect::run(&args.options())?;
            if args.json {
                render::json::write(out, &report)?;
            } else {
                render::table::inspect(out, &report)?;
            }
            Ok(0)
        }
        Command::Validate(args) => {
            let report = validate::run(&args.options())?;
            match args.format.chosen() {
                ValidateFormat::Text => render::validate_text::write(out, &report)?,
                ValidateFormat::Json => render::json::write(out, &report)?,
                ValidateFormat::Github => render::github::write(out, &report)?,
                ValidateFormat::Junit => render::junit::write(out, &report)?,
            }
            Ok(validate::exit_code(&report))
        }
        Command::AddClassify(args) => {
            let report = add_classify::run(&args.options())?;
            if args.json {
                render::json::write(out, &report)?;
            } else {
                render::add_classify::write(out, &report)?;
            }
            Ok(0)
        }
        Command::Diff(args) => {
            let report = diff::run(&args.options())?;
            match args.format.chosen() {
                ValidateFormat::Text => render::diff::text(out, &report)?,
                ValidateFormat::Json => render::json::write(out, &report)?,
                ValidateFormat::Github => render::diff::github(out, &report)?,
                ValidateFormat::Junit => render::diff::junit(out, &report)?,
            }
            Ok(diff::exit_code(&report))
        }
        #[cfg(feature = "serve")]
        Command::Warmup(args) => {
            let report = warmup::run(&args.options())?;
            if args.json {
                render::json::write(out, &report)?;
            } else {
                write!(out, "{report}")?;
            }
            Ok(0)
        }
        #[cfg(feature = "serve")]
        Command::Run(args) => {
            let report = run_cmd::run(&args.options())?;
            if args.json {
                render::run::json(out, &report)?;
            } else {
                render::run::table(out, &report)?;
            }
            Ok(0)
        }
        #[cfg(feature = "serve")]
        Command::Serve(args) if args.version => {
            let library = smtool::serve::library::LibraryOptions::from_env(
                args.tensorflow_dir.clone(),
                false,
            );
            write!(out, "{}", smtool::serve::version_text(&library))?;
            Ok(0)
        }
        #[cfg(feature = "serve")]
        Command::Serve(args) => {
            smtool::serve::run(args.options()?)?;
            Ok(0)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The error and its causes, as anyhow's `{:#}` writes them, less the causes a message
/// already quotes (many say "cannot read 'F': {cause}" themselves).
fn message(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let cause = cause.to_string();
        if text.is_empty() {
            text = cause;
        } else if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = run(cli, &mut out).and_then(|code| {
        out.flush()?;
        Ok(code)
    });
    match result {
        Ok(code) => ExitCode::from(code),
        // `smtool inspect ... | head` closing the pipe early is not an error.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            drop(out);
            // A closed stderr must not turn the error into a panic's exit code.
            let _ = writeln!(std::io::stderr(), "smtool: error: {}", message(&err));
            ExitCode::from(EXIT_ERROR)
        }
    }
}
