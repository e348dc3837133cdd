//! Security: paths that lead out of the model directory. An asset name that is absolute or climbs
//! with `..` makes TensorFlow open a file the model does not ship (SM502); a variables or asset
//! file that is a symlink to somewhere else makes it read that file (SM503). Either can hand the
//! contents of a file on the serving host to the graph.

use std::path::Path;

use crate::savedmodel::{self, ASSETS_DIR, ASSETS_EXTRA_DIR, VARIABLES_DIR};

use super::{Context, Finding, Rule};

/// SM502, SM503.
pub fn check(ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (tensor, file) in savedmodel::declared_assets(ctx.meta_graph) {
        let Some(why) = savedmodel::unsafe_asset_name(&file) else {
            continue;
        };
        out.push(
            Finding::new(
                Rule::AssetPath,
                format!(
                    "the graph names asset '{file}' (fed to '{tensor}'), which {why}: \
                     TensorFlow would open a file outside the model's assets/ directory; name \
                     assets by their path under assets/ and ship them with the model"
                ),
            )
            .node(crate::proto_ext::split_tensor_name(&tensor).0, None),
        );
    }
    for sub in [VARIABLES_DIR, ASSETS_DIR, ASSETS_EXTRA_DIR] {
        symlinks(ctx.dir, sub, &mut out);
    }
    out
}

/// Every symlink in `dir/sub` (the directory itself included) that leads out of `dir`. Links are
/// not followed, so the walk sees each entry once and cannot loop.
fn symlinks(dir: &Path, sub: &str, out: &mut Vec<Finding>) {
    let root = dir.join(sub);
    if root.symlink_metadata().is_err() {
        return;
    }
    for entry in walkdir::WalkDir::new(&root).sort_by_file_name() {
        let Ok(entry) = entry else { continue };
        if !entry.path_is_symlink() {
            continue;
        }
        let Some(target) = savedmodel::escapes_model(dir, entry.path()) else {
            continue;
        };
        let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        out.push(Finding::new(
            Rule::SymlinkEscape,
            format!(
                "'{}' is a symlink to '{}', outside the model directory: TensorFlow would read \
                 that file as part of the model on the serving host; replace the link with the \
                 file itself",
                rel.display(),
                target.display()
            ),
        ));
    }
}
