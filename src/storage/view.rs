//! A local view of a remote prefix: its listing laid out as a directory tree of sparse
//! placeholders (each of its object's size, holding no data), in which the objects a command
//! reads are then downloaded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::store::{Object, Remote};
use super::{Error, RemoteUrl};
use crate::files;
use crate::savedmodel::{FINGERPRINT_FILE, PBTXT_FILE, PB_FILE, VARIABLES_INDEX, WARMUP_FILE};

/// The most objects listed under one prefix (a listing entry costs about a hundred bytes).
pub const MAX_OBJECTS: usize = 1_000_000;

/// What to download into a model directory of the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    /// The graph file, variables index and fingerprint (what `inspect` reads).
    Metadata,
    /// That and the warmup file (what `validate` reads).
    MetadataAndWarmup,
    /// Every object of the model (to edit or load it).
    Everything,
}

/// The small files a reader opens, with the limits the readers apply: a larger object stays a
/// placeholder, and the reader refuses it by its size without reading it.
const METADATA: [(&str, u64); 4] = [
    (PB_FILE, files::GRAPH_FILE_LIMIT),
    (PBTXT_FILE, files::GRAPH_FILE_LIMIT),
    (FINGERPRINT_FILE, files::FINGERPRINT_FILE_LIMIT),
    (VARIABLES_INDEX, files::BUNDLE_INDEX_LIMIT),
];
const WARMUP: (&str, u64) = (WARMUP_FILE, files::WARMUP_FILE_LIMIT);

/// A remote prefix seen as a local directory; removed when dropped.
pub struct View {
    remote: Remote,
    /// The prefix that was listed (the user's URL, or its parent when it named a graph file).
    base: RemoteUrl,
    _dir: tempfile::TempDir,
    root: PathBuf,
    /// The local path of what the user named.
    target: PathBuf,
    /// Objects by their path below `base`.
    objects: BTreeMap<String, u64>,
}

/// A key part that cannot be a local file name.
fn unsafe_part(part: &str) -> bool {
    part.is_empty() || part == "." || part == ".." || part.contains(['\0', '\\'])
}

impl View {
    /// Lists `url` and lays out its objects as placeholders. `url` may name a prefix (a
    /// SavedModel, a model base path, a tree of them) or a graph file itself.
    pub fn open(url: &RemoteUrl) -> Result<View, Error> {
        let remote = Remote::connect(url)?;
        let mut base = url.clone();
        let mut objects = remote.list(&url.prefix, MAX_OBJECTS)?;
        let mut file_name = None;
        if objects.is_empty() {
            // Maybe the URL names one object: a graph file, read with its directory.
            let name = url.prefix.rsplit('/').next().unwrap_or("");
            if (name == PB_FILE || name == PBTXT_FILE) && remote.size(&url.prefix)?.is_some() {
                let parent = url.prefix.rsplit_once('/').map_or("", |(p, _)| p);
                base = RemoteUrl {
                    prefix: parent.to_owned(),
                    ..url.clone()
                };
                objects = remote.list(parent, MAX_OBJECTS)?;
                file_name = Some(name.to_owned());
            }
        }
        if objects.is_empty() {
            return Err(Error::EmptyPrefix(url.to_string()));
        }
        let dir = tempfile::Builder::new()
            .prefix(".smtool-view-")
            .tempdir()
            .map_err(|source| Error::Local {
                url: url.to_string(),
                dir: std::env::temp_dir(),
                source,
            })?;
        let root = dir.path().join("m");
        let local = |source| Error::Local {
            url: url.to_string(),
            dir: dir.path().to_path_buf(),
            source,
        };
        std::fs::create_dir(&root).map_err(local)?;
        let kept = lay_out(&root, &objects).map_err(local)?;
        let target = match file_name {
            Some(name) => root.join(name),
            None => root.clone(),
        };
        Ok(View {
            remote,
            base,
            _dir: dir,
            root,
            target,
            objects: kept,
        })
    }

    /// The local path standing for the URL the view was opened with.
    pub fn path(&self) -> &Path {
        &self.target
    }

    /// `text` with every mention of the view's directory replaced by the URL it stands for.
    pub fn relocate(&self, text: &str) -> String {
        text.replace(&self.root.display().to_string(), &self.base.to_string())
    }

    /// An error of a local reader, its paths naming the remote objects.
    pub fn relocate_error(&self, err: &dyn std::fmt::Display) -> Error {
        Error::Relocated(self.relocate(&err.to_string()))
    }

    /// The remote URL of a local path inside the view.
    pub fn url_of(&self, path: &Path) -> RemoteUrl {
        self.base.join(&self.rel(path).unwrap_or_default())
    }

    fn rel(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(&self.root).ok()?;
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        Some(parts.join("/"))
    }

    /// Downloads into the model directory `dir` (a directory of the view) what `fetch` names.
    pub fn fetch(&self, dir: &Path, fetch: Fetch) -> Result<(), Error> {
        let Some(rel) = self.rel(dir) else {
            return Ok(());
        };
        let under = |name: &str| {
            if rel.is_empty() {
                name.to_owned()
            } else {
                format!("{rel}/{name}")
            }
        };
        let mut wanted: Vec<(String, u64)> = Vec::new();
        match fetch {
            Fetch::Everything => {
                let start = under("");
                for (key, size) in &self.objects {
                    if rel.is_empty() || key.starts_with(&start) {
                        wanted.push((key.clone(), *size));
                    }
                }
            }
            Fetch::Metadata | Fetch::MetadataAndWarmup => {
                let extra = (fetch == Fetch::MetadataAndWarmup).then_some(WARMUP);
                for (name, limit) in METADATA.into_iter().chain(extra) {
                    let key = under(name);
                    if let Some(&size) = self.objects.get(&key) {
                        if size <= limit {
                            wanted.push((key, size));
                        }
                    }
                }
            }
        }
        let jobs = wanted
            .into_iter()
            .filter(|(_, size)| *size > 0)
            .map(|(key, size)| {
                let file = self.root.join(&key);
                (self.base.join(&key).prefix, size, file)
            })
            .collect();
        self.remote.download(jobs)
    }
}

/// Creates a placeholder file of the listed size for each object under `root`, and returns
/// the objects laid out. Skipped: keys with parts that are not file names, and keys that are
/// also a "directory" of other keys (the zero-byte `folder/` markers consoles create).
pub(super) fn lay_out(root: &Path, objects: &[Object]) -> std::io::Result<BTreeMap<String, u64>> {
    let mut dirs = BTreeSet::new();
    let mut usable = Vec::with_capacity(objects.len());
    for o in objects {
        let parts: Vec<&str> = o.rel.split('/').collect();
        if parts.iter().any(|p| unsafe_part(p)) {
            continue;
        }
        for i in 1..parts.len() {
            dirs.insert(parts[..i].join("/"));
        }
        usable.push(o);
    }
    for d in &dirs {
        std::fs::create_dir_all(root.join(d))?;
    }
    let mut kept = BTreeMap::new();
    for o in usable {
        if dirs.contains(&o.rel) {
            continue;
        }
        let file = std::fs::File::create(root.join(&o.rel))?;
        // A hole of the object's size: stat sees the size, the disk holds nothing.
        file.set_len(o.size)?;
        kept.insert(o.rel.clone(), o.size);
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_have_the_listed_sizes_and_odd_keys_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let objects: Vec<Object> = [
            ("1", 0),
            ("1/saved_model.pb", 10),
            ("1/variables/variables.data-00000-of-00001", 5 << 30),
            ("1/../escape", 1),
            ("2/./x", 1),
        ]
        .into_iter()
        .map(|(rel, size)| Object {
            rel: rel.to_owned(),
            size,
        })
        .collect();
        let kept = lay_out(dir.path(), &objects).unwrap();
        assert_eq!(
            kept.keys().collect::<Vec<_>>(),
            [
                "1/saved_model.pb",
                "1/variables/variables.data-00000-of-00001"
            ]
        );
        let shard = dir.path().join("1/variables/variables.data-00000-of-00001");
        assert_eq!(std::fs::metadata(&shard).unwrap().len(), 5 << 30);
        assert!(dir.path().join("1").is_dir());
        assert!(!dir.path().join("escape").exists());
    }
}
