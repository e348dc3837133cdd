//! A version directory as the manager sees it before TensorFlow opens it: a cheap signature
//! of its files (names, types, sizes, modification times, inodes) that changes whenever a copy
//! into it makes progress, and the reasons TensorFlow must not be handed it. TensorFlow opens
//! the files of a SavedModel itself, so a FIFO among them would block the load forever and a
//! device (`/dev/zero`) would be read without end: every entry must be a directory or a
//! regular file. The walk reads metadata only (no file is opened) and is bounded in entries
//! and depth.

use std::hash::{Hash, Hasher};
use std::path::Path;

/// The most entries a version directory may have. SavedModels have a handful of files plus
/// their assets; the bound keeps a look at a huge tree cheap.
pub const MAX_ENTRIES: usize = 100_000;

/// The deepest directory level looked at.
pub const MAX_DEPTH: usize = 32;

/// Where a SavedModel keeps the index of its variables.
pub const VARIABLES_INDEX: &str = "variables/variables.index";

/// A fingerprint of a directory tree's metadata: equal signatures mean no file was added,
/// removed, resized, rewritten or replaced between two looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature(u64);

/// What one look at a version directory found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub signature: Signature,
    /// Why TensorFlow must not open this directory (the first problem found).
    pub refused: Option<String>,
    /// `variables/variables.index` is there (a regular file).
    pub has_variables_index: bool,
}

/// Looks at the directory tree under `dir`, following symlinks as TensorFlow would.
pub fn scan(dir: &Path) -> Scan {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut refused = None;
    let mut has_variables_index = false;
    let walk = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .max_depth(MAX_DEPTH)
        .sort_by_file_name();
    for (i, entry) in walk.into_iter().enumerate() {
        if i >= MAX_ENTRIES {
            refused.get_or_insert_with(|| {
                format!(
                    "'{}' has more than {MAX_ENTRIES} files and directories; a SavedModel has a handful",
                    dir.display()
                )
            });
            break;
        }
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                // A dangling symlink or an unreadable subdirectory: TensorFlow decides whether
                // the model needs it; the signature notes it so a fix is seen.
                e.path().hash(&mut hasher);
                e.to_string().hash(&mut hasher);
                continue;
            }
        };
        let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        rel.hash(&mut hasher);
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(e) => {
                e.to_string().hash(&mut hasher);
                continue;
            }
        };
        hash_metadata(&meta, &mut hasher);
        match crate::files::irregular_kind(&meta) {
            None => has_variables_index |= rel == Path::new(VARIABLES_INDEX),
            Some(_) if meta.is_dir() => {}
            Some(kind) => {
                refused.get_or_insert_with(|| {
                    format!(
                        "'{}' is {kind}, not a regular file; TensorFlow would block or read without end opening it",
                        entry.path().display()
                    )
                });
            }
        }
    }
    Scan {
        signature: Signature(hasher.finish()),
        refused,
        has_variables_index,
    }
}

fn hash_metadata(meta: &std::fs::Metadata, hasher: &mut impl Hasher) {
    meta.is_dir().hash(hasher);
    meta.len().hash(hasher);
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (meta.mode(), meta.ino(), meta.dev()).hash(hasher);
        (
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec(),
        )
            .hash(hasher);
    }
    #[cfg(not(unix))]
    if let Ok(modified) = meta.modified() {
        modified.hash(hasher);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_follows_every_change_a_copy_makes() {
        let dir = tempfile::tempdir().unwrap();
        let v = dir.path();
        let empty = scan(v);
        assert_eq!(empty.refused, None);
        assert!(!empty.has_variables_index);
        assert_eq!(scan(v), empty, "nothing changed");
        std::fs::write(v.join("saved_model.pb"), b"half").unwrap();
        let half = scan(v);
        assert_ne!(half.signature, empty.signature);
        std::fs::OpenOptions::new()
            .append(true)
            .open(v.join("saved_model.pb"))
            .unwrap()
            .write_all(b" and the rest")
            .unwrap();
        let whole = scan(v);
        assert_ne!(whole.signature, half.signature);
        std::fs::create_dir(v.join("variables")).unwrap();
        std::fs::write(v.join(VARIABLES_INDEX), b"index").unwrap();
        let with_index = scan(v);
        assert_ne!(with_index.signature, whole.signature);
        assert!(with_index.has_variables_index);
        // Replaced by a file of the same size (a rename into place).
        std::fs::write(v.join("new"), b"INDEX").unwrap();
        std::fs::rename(v.join("new"), v.join(VARIABLES_INDEX)).unwrap();
        assert_ne!(scan(v).signature, with_index.signature);
    }

    use std::io::Write;

    #[cfg(unix)]
    #[test]
    fn fifos_and_devices_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("variables")).unwrap();
        let fifo = dir.path().join(VARIABLES_INDEX);
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success(), "mkfifo");
        let found = scan(dir.path());
        let why = found.refused.expect("a FIFO is refused");
        assert!(
            why.contains("variables.index' is a FIFO, not a regular file"),
            "{why}"
        );
        assert!(!found.has_variables_index);
        std::fs::remove_file(&fifo).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("saved_model.pb")).unwrap();
        let why = scan(dir.path()).refused.expect("a device is refused");
        assert!(
            why.contains("saved_model.pb' is a character device"),
            "{why}"
        );
    }
}
