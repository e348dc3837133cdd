//! Resolving what the user pointed at: a SavedModel directory, its graph file, or a model base path
//! whose numbered children are versions (the layout TensorFlow Serving serves).

use std::path::{Path, PathBuf};

use super::{io_error, Error, SavedModelDir, PBTXT_FILE, PB_FILE};

/// One numbered version directory under a model base path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub number: i64,
    pub dir: PathBuf,
}

/// What a path given on the command line refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SavedModel directory; `file` is set when the user named the graph file itself.
    Model { dir: PathBuf, file: Option<PathBuf> },
    /// A model base path; versions sorted ascending, never empty.
    BasePath {
        dir: PathBuf,
        versions: Vec<Version>,
    },
}

/// TensorFlow Serving reads a child directory as a version when its whole name parses as a
/// non-negative int64 (`00000123` is version 123).
pub fn parse_version(name: &str) -> Option<i64> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse::<i64>().ok()
}

/// The numbered version directories directly under `dir`, ascending. A name that appears twice
/// (`1` and `001`) keeps the first in directory-name order.
pub fn versions(dir: &Path) -> Result<Vec<Version>, Error> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name();
        let Some(number) = name.to_str().and_then(parse_version) else {
            continue;
        };
        if entry.path().is_dir() {
            found.push(Version {
                number,
                dir: entry.path(),
            });
        }
    }
    found.sort_by(|a, b| a.number.cmp(&b.number).then(a.dir.cmp(&b.dir)));
    found.dedup_by_key(|v| v.number);
    Ok(found)
}

/// The version of the model base path `dir` that the user asked for: number `wanted`, or the
/// latest (the highest number, what TensorFlow Serving serves by default) when `None`. The one
/// selection inspect, validate's and diff's picks and the commands that write a new model share.
pub fn pick_version<'a>(
    dir: &Path,
    versions: &'a [Version],
    wanted: Option<i64>,
) -> Result<&'a Version, Error> {
    match wanted {
        None => versions
            .last()
            .ok_or_else(|| Error::NoGraph(dir.to_path_buf())),
        Some(wanted) => {
            versions
                .iter()
                .find(|v| v.number == wanted)
                .ok_or_else(|| Error::NoVersion {
                    path: dir.to_path_buf(),
                    wanted,
                    available: versions.iter().map(|v| v.number).collect(),
                })
        }
    }
}

/// Works out what `path` is.
pub fn locate(path: &Path) -> Result<Location, Error> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound(path.to_path_buf()),
        _ => Error::Io {
            path: path.to_path_buf(),
            source: e,
        },
    })?;
    if meta.is_file() {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name != PB_FILE && name != PBTXT_FILE {
            return Err(Error::NotAGraphFile(path.to_path_buf()));
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        return Ok(Location::Model {
            dir,
            file: Some(path.to_path_buf()),
        });
    }
    if SavedModelDir::graph_file(path).is_some() {
        return Ok(Location::Model {
            dir: path.to_path_buf(),
            file: None,
        });
    }
    // A graph file that is there but not a regular file (a FIFO, say) is named as such.
    for name in [PB_FILE, PBTXT_FILE] {
        let file = path.join(name);
        if let Some(kind) = std::fs::metadata(&file)
            .ok()
            .and_then(|meta| crate::files::irregular_kind(&meta))
        {
            return Err(crate::files::FileError::NotRegular { path: file, kind }.into());
        }
    }
    let versions = versions(path)?;
    if versions.is_empty() {
        return Err(Error::NoGraph(path.to_path_buf()));
    }
    Ok(Location::BasePath {
        dir: path.to_path_buf(),
        versions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names() {
        for (name, want) in [
            ("1", Some(1)),
            ("00000123", Some(123)),
            ("0", Some(0)),
            ("-1", None),
            ("1a", None),
            ("", None),
            ("v2", None),
            ("99999999999999999999", None),
        ] {
            assert_eq!(parse_version(name), want, "{name}");
        }
    }

    #[test]
    fn picks_the_latest_or_the_version_asked_for() {
        let dir = Path::new("m");
        let versions: Vec<Version> = [1, 3, 10]
            .map(|number| Version {
                number,
                dir: dir.join(number.to_string()),
            })
            .into();
        assert_eq!(pick_version(dir, &versions, None).unwrap().number, 10);
        assert_eq!(pick_version(dir, &versions, Some(3)).unwrap().number, 3);
        let err = pick_version(dir, &versions, Some(2)).unwrap_err();
        assert!(
            matches!(&err, Error::NoVersion { wanted: 2, available, .. } if *available == [1, 3, 10]),
            "{err}"
        );
        assert!(matches!(
            pick_version(dir, &[], None),
            Err(Error::NoGraph(_))
        ));
    }
}
