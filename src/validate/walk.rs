//! Finding the SavedModels under the paths given to `smtool validate`: a model, a model base path
//! with numbered versions, or any directory tree.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::ValidateError;
use crate::savedmodel::{self, Error, Location, SavedModelDir};

/// Something to validate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A directory with a graph file; `file` when the user named the graph file itself.
    Model { dir: PathBuf, file: Option<PathBuf> },
    /// A directory that is meant to be a SavedModel but cannot be read as one.
    Unreadable { dir: PathBuf, reason: String },
}

impl Target {
    fn dir(&self) -> &Path {
        match self {
            Target::Model { dir, .. } | Target::Unreadable { dir, .. } => dir,
        }
    }
}

/// Directories inside a SavedModel or tool state that never hold models.
fn skipped(name: &str) -> bool {
    name.starts_with('.')
        || matches!(
            name,
            savedmodel::VARIABLES_DIR | savedmodel::ASSETS_DIR | savedmodel::ASSETS_EXTRA_DIR
        )
}

/// A directory without a graph file that still looks like a SavedModel: it has
/// `variables/variables.index` or `fingerprint.pb` (an `assets/` directory alone is too common
/// elsewhere to count).
fn looks_like_model(dir: &Path) -> bool {
    dir.join(savedmodel::VARIABLES_INDEX).is_file()
        || dir.join(savedmodel::FINGERPRINT_FILE).is_file()
}

fn missing_graph(dir: &Path) -> Target {
    Target::Unreadable {
        dir: dir.to_path_buf(),
        reason: format!(
            "'{}' looks like a SavedModel (it has variables/variables.index or fingerprint.pb, or \
             sits among numbered versions) but holds no saved_model.pb or saved_model.pbtxt: \
             TensorFlow cannot load it; re-export the model or restore the graph file",
            dir.display()
        ),
    }
}

/// Every model under `paths`, in path order, each once. A path that does not exist, a file that
/// is not a graph file, or a tree without any SavedModel is an error (the run cannot go on).
pub fn discover(paths: &[PathBuf]) -> Result<Vec<Target>, ValidateError> {
    let mut targets = Vec::new();
    for path in paths {
        let found = discover_one(path)?;
        if found.is_empty() {
            return Err(ValidateError::NothingFound(path.clone()));
        }
        targets.extend(found);
    }
    let mut seen = BTreeSet::new();
    targets.retain(|t| seen.insert(t.dir().to_path_buf()));
    Ok(targets)
}

fn discover_one(path: &Path) -> Result<Vec<Target>, Error> {
    match savedmodel::locate(path) {
        Ok(Location::Model { dir, file }) => return Ok(vec![Target::Model { dir, file }]),
        // Base paths and trees are walked alike below.
        Ok(Location::BasePath { .. }) | Err(Error::NoGraph(_)) => {}
        Err(e) => return Err(e),
    }
    let mut targets = Vec::new();
    let mut walker = walkdir::WalkDir::new(path)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = walker.next() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let dir = e.path().unwrap_or(path).to_path_buf();
                // A loop of symlinks or an unreadable directory: report it, keep walking.
                targets.push(Target::Unreadable {
                    reason: format!("cannot read '{}': {e}", dir.display()),
                    dir,
                });
                continue;
            }
        };
        if !entry.file_type().is_dir() {
            continue;
        }
        let dir = entry.path();
        let name = entry.file_name().to_string_lossy();
        if entry.depth() > 0 && skipped(&name) {
            walker.skip_current_dir();
            continue;
        }
        if SavedModelDir::graph_file(dir).is_some() {
            targets.push(Target::Model {
                dir: dir.to_path_buf(),
                file: None,
            });
            walker.skip_current_dir();
            continue;
        }
        if looks_like_model(dir) || is_empty_version(dir) {
            targets.push(missing_graph(dir));
            walker.skip_current_dir();
        }
    }
    Ok(targets)
}

/// A numbered directory beside other numbered directories that hold SavedModels: TensorFlow
/// Serving takes it for a version and fails to load it.
fn is_empty_version(dir: &Path) -> bool {
    let is_version = dir
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(savedmodel::parse_version)
        .is_some();
    let Some(parent) = dir.parent() else {
        return false;
    };
    is_version
        && savedmodel::versions(parent).is_ok_and(|vs| {
            vs.iter()
                .any(|v| v.dir != dir && SavedModelDir::graph_file(&v.dir).is_some())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_directories_are_skipped() {
        for (name, skip) in [
            ("variables", true),
            ("assets", true),
            ("assets.extra", true),
            (".git", true),
            ("1", false),
            ("models", false),
        ] {
            assert_eq!(skipped(name), skip, "{name}");
        }
    }
}
