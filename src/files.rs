//! Opening the files smtool reads itself (config files, warmup requests, label files, model
//! files). Any path may name a FIFO, a device, or a file that is still being written, so a
//! read never blocks on opening, refuses anything but a regular file, never reads more than a
//! stated limit, and its error names the file and the limit.
//!
//! The type is checked twice: with `stat` before opening (opening some devices has effects of
//! its own) and with `fstat` on the opened file (the path may have been replaced in between).
//! On Unix the open is non-blocking, so a FIFO with no writer cannot stall it. Elsewhere the
//! open is a plain one and anything not a file or directory is "a special file": the stat
//! before opening already refuses what is not a regular file.

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::{Path, PathBuf};

/// One mebibyte.
pub const MIB: u64 = 1 << 20;

/// The largest config file read: `--model_config_file`, `--batching_parameters_file`,
/// `--monitoring_config_file`. A config of thousands of models is a few megabytes.
pub const CONFIG_FILE_LIMIT: u64 = 64 * MIB;

/// The largest label file (`add-classify --labels`): one line per class.
pub const LABEL_FILE_LIMIT: u64 = 64 * MIB;

/// The largest `saved_model.pb` / `saved_model.pbtxt` read: protobuf's (and TensorFlow's)
/// 2 GiB limit on one message.
pub const GRAPH_FILE_LIMIT: u64 = 2 << 30;

/// The largest `variables/variables.index` read (the index of a model with a million
/// variables is tens of megabytes).
pub const BUNDLE_INDEX_LIMIT: u64 = 1 << 30;

/// The largest `fingerprint.pb` read (it holds a few hashes).
pub const FINGERPRINT_FILE_LIMIT: u64 = MIB;

/// The largest warmup file (`assets.extra/tf_serving_warmup_requests`) read.
pub const WARMUP_FILE_LIMIT: u64 = 1 << 30;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read '{}': {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("'{}' is {kind}, not a regular file", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("'{}' is larger than the {} limit for {what} ({size} bytes)", path.display(), human(*limit))]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
        what: &'static str,
    },
    #[error("'{}' is not UTF-8 text", path.display())]
    NotText { path: PathBuf },
}

impl FileError {
    /// The file was not there (callers for which a missing file is normal test this).
    pub fn is_not_found(&self) -> bool {
        matches!(self, FileError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// A size as people write limits: `64 MiB`, `2 GiB`, else bytes.
pub fn human(bytes: u64) -> String {
    const GIB: u64 = 1 << 30;
    if bytes >= GIB && bytes.is_multiple_of(GIB) {
        format!("{} GiB", bytes / GIB)
    } else if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes}-byte")
    }
}

/// What a file that is not a regular file is, for messages; `None` for a regular file.
pub fn irregular_kind(meta: &Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() {
        return None;
    }
    if t.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return Some("a FIFO");
        }
        if t.is_char_device() {
            return Some("a character device");
        }
        if t.is_block_device() {
            return Some("a block device");
        }
        if t.is_socket() {
            return Some("a socket");
        }
    }
    Some("a special file")
}

/// Opens `path` for reading if it is a regular file (symlinks followed); returns the file and
/// its size when opened.
pub fn open_regular(path: &Path) -> Result<(File, u64), FileError> {
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let check = |meta: &Metadata| match irregular_kind(meta) {
        Some(kind) => Err(FileError::NotRegular {
            path: path.to_path_buf(),
            kind,
        }),
        None => Ok(()),
    };
    check(&std::fs::metadata(path).map_err(io)?)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        // A regular file ignores O_NONBLOCK; a FIFO swapped in after the stat opens at once.
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    check(&meta)?;
    Ok((file, meta.len()))
}

/// The bytes of the regular file `path`, at most `limit` of them (`what` names the kind of
/// file in the error). A file that grows past the limit while it is read is refused too.
pub fn read_capped(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, FileError> {
    let too_large = |size| FileError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit,
        what,
    };
    let (file, size) = open_regular(path)?;
    if size > limit {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| FileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// [`read_capped`] for a text file.
pub fn read_text_capped(path: &Path, limit: u64, what: &'static str) -> Result<String, FileError> {
    String::from_utf8(read_capped(path, limit, what)?).map_err(|_| FileError::NotText {
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_regular_files_within_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, "hello").unwrap();
        assert_eq!(read_text_capped(&path, 5, "a test file").unwrap(), "hello");
        let err = read_capped(&path, 4, "a test file").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "'{}' is larger than the 4-byte limit for a test file (5 bytes)",
                path.display()
            )
        );
        let err = read_capped(&dir.path().join("none"), 4, "a test file").unwrap_err();
        assert!(err.is_not_found(), "{err}");
        let err = read_capped(dir.path(), 4, "a test file").unwrap_err();
        assert!(
            err.to_string()
                .ends_with("is a directory, not a regular file"),
            "{err}"
        );
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        let err = read_text_capped(&path, 4, "a test file").unwrap_err();
        assert!(err.to_string().ends_with("is not UTF-8 text"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn fifos_and_devices_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success(), "mkfifo");
        let err = read_capped(&fifo, MIB, "a test file").unwrap_err();
        assert!(
            err.to_string().ends_with("is a FIFO, not a regular file"),
            "{err}"
        );
        let err = read_capped(Path::new("/dev/zero"), MIB, "a test file").unwrap_err();
        assert!(
            err.to_string()
                .ends_with("is a character device, not a regular file"),
            "{err}"
        );
        // A symlink is followed to what it names.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(matches!(
            read_capped(&link, MIB, "a test file"),
            Err(FileError::NotRegular { .. })
        ));
    }

    #[test]
    fn limits_read_like_people_write_them() {
        assert_eq!(human(64 * MIB), "64 MiB");
        assert_eq!(human(2 << 30), "2 GiB");
        assert_eq!(human(1000), "1000-byte");
    }
}
