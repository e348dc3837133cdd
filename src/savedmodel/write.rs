//! Writing an edited SavedModel to a new directory, atomically: everything goes into a temporary
//! directory next to the destination, is flushed to disk, and is renamed into place. The source
//! directory is only read. Variables, assets and other files are hard-linked where possible
//! (else copied, with a progress bar for large models); a stale `fingerprint.pb` is not kept,
//! because it hashes the old `saved_model.pb`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use prost::Message;

use crate::proto::tensorflow as tf;

use super::{FINGERPRINT_FILE, PBTXT_FILE, PB_FILE};

/// Copies bigger than this (in total) show a progress bar on a terminal.
const PROGRESS_THRESHOLD: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("'{}' already exists; choose another --out or pass --force to replace it", .0.display())]
    Exists(PathBuf),
    #[error("--out '{}' is the source model or inside it; write the edited model somewhere else", .0.display())]
    IntoSource(PathBuf),
    #[error("--out '{}' contains the source model; write the edited model somewhere else", .0.display())]
    ContainsSource(PathBuf),
    #[error(
        "'{}' exists and is not a SavedModel directory; --force only replaces a SavedModel or an \
         empty directory, so remove it yourself or choose another --out",
        .0.display()
    )]
    NotAModel(PathBuf),
    #[error(
        "'{}' is a symlink to '{}', outside the model directory; the edited model would carry a \
         file from elsewhere on this machine, so nothing was written: replace the link with the \
         file itself, or remove it",
        path.display(),
        target.display()
    )]
    OutsideModel { path: PathBuf, target: PathBuf },
    #[error("{action} '{}': {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> WriteError + 'a {
    move |source| WriteError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// How files of the source are brought over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// Hard-link when source and destination share a file system, else copy.
    LinkOrCopy,
    /// Always copy.
    Copy,
}

#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Replace an existing destination.
    pub force: bool,
    pub transfer: Transfer,
    /// Show a progress bar for large copies (on a terminal).
    pub progress: bool,
}

impl WriteOptions {
    /// The options of a command's `--force` and `--copy`; `force` only when the destination is
    /// not a version of a base path (`--as-next-version` never replaces anything).
    pub fn from_flags(force: bool, next_version: bool, copy: bool, progress: bool) -> Self {
        WriteOptions {
            force: force && !next_version,
            transfer: if copy {
                Transfer::Copy
            } else {
                Transfer::LinkOrCopy
            },
            progress,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WriteSummary {
    pub files_linked: usize,
    pub files_copied: usize,
    pub bytes_copied: u64,
    /// A `fingerprint.pb` of the source was left out.
    pub dropped_fingerprint: bool,
}

/// The absolute form of `path`, resolving symlinks of the part that exists.
fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    let abs = std::path::absolute(path)?;
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return Ok(abs),
        }
    }
    let mut out = existing.canonicalize()?;
    out.extend(rest.iter().rev());
    Ok(out)
}

/// One file or directory of the source to bring over.
struct SourceEntry {
    rel: PathBuf,
    bytes: u64,
    /// Reached through a symlink: copied, since a hard link would link the symlink itself.
    via_symlink: bool,
}

/// Files of `src` to bring over: everything but the graph files and the fingerprint. Symlinks
/// within the model are followed, so the new model holds the files they point to; a symlink that
/// leads out of the model is an error.
fn source_files(src: &Path) -> Result<Vec<SourceEntry>, WriteError> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(src)
        .min_depth(1)
        .follow_links(true)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| WriteError::Io {
            action: "reading",
            path: src.to_path_buf(),
            source: e.into(),
        })?;
        let rel = entry
            .path()
            .strip_prefix(src)
            .unwrap_or(entry.path())
            .to_path_buf();
        if rel == Path::new(PB_FILE)
            || rel == Path::new(PBTXT_FILE)
            || rel == Path::new(FINGERPRINT_FILE)
        {
            continue;
        }
        if entry.path_is_symlink() {
            // Checked before the walk descends into a linked directory.
            if let Some(target) = super::escapes_model(src, entry.path()) {
                return Err(WriteError::OutsideModel {
                    path: entry.path().to_path_buf(),
                    target,
                });
            }
        }
        if entry.file_type().is_file() || entry.file_type().is_dir() {
            let bytes = if entry.file_type().is_file() {
                entry.metadata().map(|m| m.len()).unwrap_or(0)
            } else {
                0
            };
            let via_symlink = entry.path_is_symlink()
                || rel.ancestors().any(|a| {
                    !a.as_os_str().is_empty()
                        && src
                            .join(a)
                            .symlink_metadata()
                            .is_ok_and(|m| m.file_type().is_symlink())
                });
            files.push(SourceEntry {
                rel,
                bytes,
                via_symlink,
            });
        }
    }
    Ok(files)
}

fn sync_dir(dir: &Path) -> Result<(), WriteError> {
    // Directories can be opened and fsynced on Unix; elsewhere this is best effort.
    match File::open(dir) {
        Ok(f) => {
            let _ = f.sync_all();
            Ok(())
        }
        Err(e) => Err(io("opening", dir)(e)),
    }
}

fn copy_file(from: &Path, to: &Path, bar: &ProgressBar) -> Result<u64, WriteError> {
    let mut input = File::open(from).map_err(io("reading", from))?;
    let mut output = File::create(to).map_err(io("creating", to))?;
    let mut reader = bar.wrap_read(&mut input);
    let n = std::io::copy(&mut reader, &mut output).map_err(io("copying to", to))?;
    output.sync_all().map_err(io("flushing", to))?;
    if let Ok(meta) = std::fs::metadata(from) {
        let _ = std::fs::set_permissions(to, meta.permissions());
    }
    Ok(n)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let mut out = File::create(path).map_err(io("creating", path))?;
    out.write_all(bytes).map_err(io("writing", path))?;
    out.sync_all().map_err(io("flushing", path))
}

/// Writes `saved_model` as `dst/saved_model.pb` beside the other files of the model in `src`.
/// `dst` must not exist unless `opts.force`; it must not be `src` or inside it.
pub fn write_saved_model(
    src: &Path,
    saved_model: &tf::SavedModel,
    dst: &Path,
    opts: &WriteOptions,
) -> Result<WriteSummary, WriteError> {
    write_saved_model_with(src, saved_model, dst, opts, &[])
}

/// [`write_saved_model`], with `files` (paths relative to the model, `/`-separated, and their
/// contents) written into the new model as well, replacing the source's files of those names
/// (which are neither linked nor copied, so the source's stay as they are).
pub fn write_saved_model_with(
    src: &Path,
    saved_model: &tf::SavedModel,
    dst: &Path,
    opts: &WriteOptions,
    files: &[(&str, &[u8])],
) -> Result<WriteSummary, WriteError> {
    let extra = files;
    let src_abs = absolute(src).map_err(io("resolving", src))?;
    let dst_abs = absolute(dst).map_err(io("resolving", dst))?;
    if dst_abs.starts_with(&src_abs) {
        return Err(WriteError::IntoSource(dst.to_path_buf()));
    }
    if src_abs.starts_with(&dst_abs) {
        return Err(WriteError::ContainsSource(dst.to_path_buf()));
    }
    if dst.symlink_metadata().is_ok() {
        if !opts.force {
            return Err(WriteError::Exists(dst.to_path_buf()));
        }
        // --force replaces an edited model, never an unrelated directory or file.
        let replaceable = dst.is_dir()
            && !dst
                .symlink_metadata()
                .is_ok_and(|m| m.file_type().is_symlink())
            && (dst.join(PB_FILE).is_file()
                || dst.join(PBTXT_FILE).is_file()
                || std::fs::read_dir(dst).is_ok_and(|mut d| d.next().is_none()));
        if !replaceable {
            return Err(WriteError::NotAModel(dst.to_path_buf()));
        }
    }
    let parent = match dst_abs.parent() {
        Some(p) => p.to_path_buf(),
        None => return Err(WriteError::IntoSource(dst.to_path_buf())),
    };
    std::fs::create_dir_all(&parent).map_err(io("creating", &parent))?;
    let name = dst_abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.smtool-"))
        .tempdir_in(&parent)
        .map_err(io("creating a temporary directory in", &parent))?;

    let mut summary = WriteSummary {
        dropped_fingerprint: src.join(FINGERPRINT_FILE).is_file(),
        ..Default::default()
    };
    let files: Vec<SourceEntry> = source_files(src)?
        .into_iter()
        .filter(|f| !extra.iter().any(|(rel, _)| f.rel == Path::new(rel)))
        .collect();
    let total: u64 = files.iter().map(|f| f.bytes).sum();
    let bar = if opts.progress && total >= PROGRESS_THRESHOLD {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message("copying variables and assets");
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut dirs = vec![tmp.path().to_path_buf()];
    for file in &files {
        let from = src.join(&file.rel);
        let to = tmp.path().join(&file.rel);
        if from.is_dir() {
            std::fs::create_dir_all(&to).map_err(io("creating", &to))?;
            dirs.push(to);
            continue;
        }
        if opts.transfer == Transfer::LinkOrCopy
            && !file.via_symlink
            && std::fs::hard_link(&from, &to).is_ok()
        {
            summary.files_linked += 1;
            bar.inc(file.bytes);
            continue;
        }
        summary.bytes_copied += copy_file(&from, &to, &bar)?;
        summary.files_copied += 1;
    }
    bar.finish_and_clear();

    let graph = tmp.path().join(PB_FILE);
    write_file(&graph, &saved_model.encode_to_vec())?;
    for (rel, bytes) in extra {
        let path = tmp.path().join(rel);
        if let Some(dir) = path.parent() {
            if !dir.is_dir() {
                std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
                dirs.push(dir.to_path_buf());
            }
        }
        write_file(&path, bytes)?;
    }
    for dir in dirs.iter().rev() {
        sync_dir(dir)?;
    }

    // Move an existing destination aside first, so a failure leaves either the old or the new
    // model in place, never neither.
    let backup = if dst.symlink_metadata().is_ok() {
        let backup = parent.join(format!(".{name}.smtool-old-{}", std::process::id()));
        std::fs::rename(dst, &backup).map_err(io("moving aside", dst))?;
        Some(backup)
    } else {
        None
    };
    let kept = tmp.keep();
    if let Err(e) = std::fs::rename(&kept, dst) {
        if let Some(b) = &backup {
            let _ = std::fs::rename(b, dst);
        }
        let _ = std::fs::remove_dir_all(&kept);
        return Err(io("renaming into", dst)(e));
    }
    if let Some(b) = backup {
        std::fs::remove_dir_all(&b).map_err(io("removing the replaced model at", &b))?;
    }
    sync_dir(&parent)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> tf::SavedModel {
        tf::SavedModel {
            saved_model_schema_version: 1,
            meta_graphs: vec![tf::MetaGraphDef::default()],
        }
    }

    fn src_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("variables")).unwrap();
        std::fs::write(dir.path().join("variables/variables.index"), b"index").unwrap();
        std::fs::create_dir_all(dir.path().join("assets")).unwrap();
        std::fs::write(dir.path().join("assets/vocab.txt"), b"a\nb\n").unwrap();
        std::fs::write(dir.path().join(PB_FILE), b"old graph").unwrap();
        std::fs::write(dir.path().join(FINGERPRINT_FILE), b"stale").unwrap();
        std::fs::write(dir.path().join(PBTXT_FILE), b"old text graph").unwrap();
        dir
    }

    fn opts(force: bool, transfer: Transfer) -> WriteOptions {
        WriteOptions {
            force,
            transfer,
            progress: false,
        }
    }

    #[test]
    fn writes_graph_and_brings_files_without_fingerprint() {
        let src = src_dir();
        let out = tempfile::tempdir().unwrap();
        for transfer in [Transfer::LinkOrCopy, Transfer::Copy] {
            let dst = out.path().join(format!("{transfer:?}"));
            let s = write_saved_model(src.path(), &model(), &dst, &opts(false, transfer)).unwrap();
            assert!(s.dropped_fingerprint);
            assert_eq!(s.files_linked + s.files_copied, 2);
            assert_eq!(
                std::fs::read(dst.join("assets/vocab.txt")).unwrap(),
                b"a\nb\n"
            );
            assert_eq!(
                std::fs::read(dst.join("variables/variables.index")).unwrap(),
                b"index"
            );
            assert!(!dst.join(FINGERPRINT_FILE).exists());
            // The graph is written once, binary, whatever the source had.
            assert!(!dst.join(PBTXT_FILE).exists());
            let graph = std::fs::read(dst.join(PB_FILE)).unwrap();
            assert_eq!(tf::SavedModel::decode(graph.as_slice()).unwrap(), model());
        }
        // The source is as it was.
        assert_eq!(
            std::fs::read(src.path().join(PB_FILE)).unwrap(),
            b"old graph"
        );
        // No temporary directories are left behind.
        let left: Vec<_> = std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }

    #[test]
    fn added_files_replace_the_sources_without_touching_them() {
        let src = src_dir();
        std::fs::create_dir_all(src.path().join("assets.extra")).unwrap();
        std::fs::write(src.path().join("assets.extra/warmup"), b"old").unwrap();
        let out = tempfile::tempdir().unwrap();
        for (name, rel) in [("a", "assets.extra/warmup"), ("b", "new.extra/deeper/file")] {
            let dst = out.path().join(name);
            let files: [(&str, &[u8]); 1] = [(rel, b"new")];
            let opts = opts(false, Transfer::LinkOrCopy);
            write_saved_model_with(src.path(), &model(), &dst, &opts, &files).unwrap();
            assert_eq!(std::fs::read(dst.join(rel)).unwrap(), b"new");
            assert_eq!(
                std::fs::read(dst.join("assets/vocab.txt")).unwrap(),
                b"a\nb\n"
            );
        }
        // The source's file was neither linked (and overwritten through the link) nor changed.
        assert_eq!(
            std::fs::read(src.path().join("assets.extra/warmup")).unwrap(),
            b"old"
        );
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_files_are_copied_with_their_contents() {
        let src = src_dir();
        std::fs::create_dir(src.path().join("store")).unwrap();
        std::fs::write(src.path().join("store/shard"), b"weights").unwrap();
        std::os::unix::fs::symlink(
            "../store/shard",
            src.path().join("variables/variables.data-00000-of-00001"),
        )
        .unwrap();
        let out = tempfile::tempdir().unwrap();
        let dst = out.path().join("m");
        let s = write_saved_model(
            src.path(),
            &model(),
            &dst,
            &opts(false, Transfer::LinkOrCopy),
        )
        .unwrap();
        let shard = dst.join("variables/variables.data-00000-of-00001");
        assert!(!shard.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&shard).unwrap(), b"weights");
        assert_eq!(s.files_copied, 1, "{s:?}");
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_out_of_the_model_are_refused() {
        let src = src_dir();
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(elsewhere.path().join("shard"), b"weights").unwrap();
        std::os::unix::fs::symlink(
            elsewhere.path().join("shard"),
            src.path().join("variables/variables.data-00000-of-00001"),
        )
        .unwrap();
        let out = tempfile::tempdir().unwrap();
        let dst = out.path().join("m");
        let err = write_saved_model(src.path(), &model(), &dst, &opts(false, Transfer::Copy))
            .unwrap_err();
        assert!(matches!(err, WriteError::OutsideModel { .. }), "{err}");
        assert!(
            err.to_string().contains("outside the model directory"),
            "{err}"
        );
        assert!(!dst.exists());
    }

    #[test]
    fn refuses_existing_destination_unless_forced() {
        let src = src_dir();
        let out = tempfile::tempdir().unwrap();
        let dst = out.path().join("m");
        std::fs::create_dir_all(&dst).unwrap();
        std::fs::write(dst.join("keep"), b"user data").unwrap();
        // Not a SavedModel: kept even with --force.
        let err =
            write_saved_model(src.path(), &model(), &dst, &opts(true, Transfer::Copy)).unwrap_err();
        assert!(matches!(err, WriteError::NotAModel(_)), "{err}");
        assert_eq!(std::fs::read(dst.join("keep")).unwrap(), b"user data");
        let file = out.path().join("file");
        std::fs::write(&file, b"user data").unwrap();
        let err = write_saved_model(src.path(), &model(), &file, &opts(true, Transfer::Copy))
            .unwrap_err();
        assert!(matches!(err, WriteError::NotAModel(_)), "{err}");
        // A SavedModel directory is replaced with --force only.
        std::fs::write(dst.join(PB_FILE), b"older graph").unwrap();
        let err = write_saved_model(src.path(), &model(), &dst, &opts(false, Transfer::Copy))
            .unwrap_err();
        assert!(err.to_string().contains("pass --force"), "{err}");
        assert_eq!(std::fs::read(dst.join("keep")).unwrap(), b"user data");
        write_saved_model(src.path(), &model(), &dst, &opts(true, Transfer::Copy)).unwrap();
        assert!(!dst.join("keep").exists());
        assert!(dst.join(PB_FILE).is_file());
    }

    #[test]
    fn refuses_to_write_into_or_over_the_source() {
        let src = src_dir();
        for dst in [src.path().to_path_buf(), src.path().join("edited")] {
            let err = write_saved_model(src.path(), &model(), &dst, &opts(true, Transfer::Copy))
                .unwrap_err();
            assert!(matches!(err, WriteError::IntoSource(_)), "{err}");
        }
        let parent = src.path().parent().unwrap();
        let err = write_saved_model(src.path(), &model(), parent, &opts(true, Transfer::Copy))
            .unwrap_err();
        assert!(matches!(err, WriteError::ContainsSource(_)), "{err}");
        assert_eq!(
            std::fs::read(src.path().join(PB_FILE)).unwrap(),
            b"old graph"
        );
    }
}
