//! Command-line arguments (clap) and their conversion into validated options structs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::commands::inspect::{InspectOptions, VersionSelect};
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
