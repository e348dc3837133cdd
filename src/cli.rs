//! Command-line arguments (clap) and their conversion into validated options structs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands::inspect::{InspectOptions, VersionSelect};
use crate::commands::validate::{RequiredSignature, ValidateOptions};
use crate::savedmodel::parse_tag_set;

/// Inspect, validate, edit and serve TensorFlow SavedModels.
///
/// Exit codes: 0 success, 1 findings (validate), 2 could not run.
#[derive(Debug, Parser)]
#[command(name = "smtool", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show tag-sets, signatures, tensors, variables, assets and ops of a SavedModel
    /// (reads saved_model.pb; TensorFlow is not needed).
    Inspect(InspectArgs),
    /// Check SavedModels before deployment, without TensorFlow: signatures against TensorFlow's
    /// and TF Serving's rules, shapes, graph binding, init op, variables, assets, warmup
    /// requests, unsafe and unknown ops (rules: docs/rules.md). Exit 1 when a model fails.
    Validate(ValidateArgs),
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A SavedModel directory, its saved_model.pb or saved_model.pbtxt, or a model base path
    /// whose numbered subdirectories are versions.
    pub path: PathBuf,
    /// With a model base path: inspect this version instead of the latest.
    #[arg(long, value_name = "N", conflicts_with = "all_versions")]
    pub version: Option<i64>,
    /// With a model base path: inspect every version.
    #[arg(long)]
    pub all_versions: bool,
    /// Only the meta graph with exactly this tag-set, comma-separated (e.g. `serve,gpu`).
    #[arg(long, value_name = "TAGS")]
    pub tag_set: Option<String>,
    /// Only this signature (e.g. `serving_default`).
    #[arg(long, value_name = "KEY")]
    pub signature: Option<String>,
    /// Also show variables, assets, the init op, ops used (with the function library) and the
    /// fingerprint.
    #[arg(long)]
    pub all: bool,
    /// Print a JSON document (see docs/inspect-json.md) instead of tables.
    #[arg(long)]
    pub json: bool,
}

impl InspectArgs {
    /// The core options; `--json` stays with the caller, which picks the renderer.
    pub fn options(&self) -> InspectOptions {
        InspectOptions {
            path: self.path.clone(),
            versions: match (self.version, self.all_versions) {
                (Some(v), _) => VersionSelect::Specific(v),
                (None, true) => VersionSelect::All,
                (None, false) => VersionSelect::Latest,
            },
            tag_set: self.tag_set.as_deref().map(parse_tag_set),
            signature: self.signature.clone(),
            all: self.all,
        }
    }
}

/// How `smtool validate` prints its findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    /// Readable text, grouped by model then signature.
    Text,
    /// One JSON document (schema in docs/rules.md).
    Json,
    /// GitHub Actions annotations (::error file=...::message).
    Github,
    /// JUnit XML: a test suite per model, a test case per rule family.
    Junit,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// SavedModel directories, graph files, model base paths or any directory trees: every
    /// SavedModel found under them is validated.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Warnings fail the run too (exit 1).
    #[arg(long)]
    pub strict: bool,
    /// The deployment needs this signature, optionally served under this TF Serving endpoint:
    /// KEY or KEY=classify|regress|predict (e.g. `serving_default=classify`). Repeatable.
    #[arg(long, value_name = "KEY[=METHOD]")]
    pub require_signature: Vec<RequiredSignature>,
    /// Tag-set of the meta graph to check, comma-separated (TF Serving loads `serve`).
    #[arg(long, value_name = "TAGS", default_value = "serve")]
    pub tag_set: String,
    /// Accept this op on purpose: it is not reported as unsafe or unknown. Repeatable.
    #[arg(long, value_name = "OP")]
    pub allow_op: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ValidateFormat::Text)]
    pub format: ValidateFormat,
    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

impl ValidateArgs {
    /// The core options; the output format stays with the caller, which picks the renderer.
    pub fn options(&self) -> ValidateOptions {
        let mut opts = ValidateOptions::new(self.paths.clone());
        opts.tag_set = parse_tag_set(&self.tag_set);
        opts.strict = self.strict;
        opts.require.clone_from(&self.require_signature);
        opts.allow_ops = self.allow_op.iter().cloned().collect();
        opts
    }

    /// The output format, `--json` included.
    pub fn output_format(&self) -> ValidateFormat {
        if self.json {
            ValidateFormat::Json
        } else {
            self.format
        }
    }
}
