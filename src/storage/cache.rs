//! `smtool serve`'s local copies of remote model base paths. TensorFlow's C API loads only
//! local directories, so each remote base path gets a cache directory that the model manager
//! follows like any local base path, and a mirror that keeps it in step with the bucket.
//!
//! A version enters the cache only whole: it is synced when its prefix holds its graph file
//! (which [`super::publish_version`] uploads last), downloaded into a hidden `.partial-N`
//! directory, checked (graph file present, every variable shard the index names there and
//! large enough), and only then renamed to `N`, so the manager never sees a partial version and
//! the availability rules of local base paths hold unchanged. A version that fails the check is
//! dropped and looked at again on the next poll. Versions leave the cache once the policy no
//! longer wants them and every wanted version is in it (the manager then unloads them as its
//! availability-preserving policy allows).
//!
//! The cache is removed when the server stops. A server killed outright (SIGKILL, the OOM
//! killer) cannot do that, so each cache holds an exclusive lock on its `.lock` file for the
//! life of its process, and the next server to start removes every cache whose lock it can
//! take: their owners are gone. Locks, unlike process ids, hold across PID namespaces that
//! share one temporary directory.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::store::Remote;
use super::view::{lay_out, MAX_OBJECTS};
use super::{Error, RemoteUrl};
use crate::savedmodel::{self, bundle::BundleIndex, PBTXT_FILE, PB_FILE, VARIABLES_INDEX};

/// Which of the version numbers in the bucket to keep in the cache (the model's version
/// policy).
pub type Selector = Arc<dyn Fn(&[i64]) -> BTreeSet<i64> + Send + Sync>;

struct Mirror {
    url: RemoteUrl,
    dir: PathBuf,
    select: Mutex<Selector>,
    /// Held by a sync: the poller and a config reload never sync one mirror at once.
    syncing: Mutex<()>,
    remote: Remote,
}

struct Cache {
    root: tempfile::TempDir,
    mirrors: Mutex<Vec<Arc<Mirror>>>,
    /// Locked while this process lives; see the module header.
    _lock: std::fs::File,
}

const CACHE_PREFIX: &str = ".smtool-serve-cache-";
const LOCK_FILE: &str = ".lock";

static CACHE: OnceLock<Result<Cache, String>> = OnceLock::new();

/// Removes the cache directory (when the server stops; the process lives on no longer).
pub fn remove() {
    if let Some(Ok(cache)) = CACHE.get() {
        let _ = std::fs::remove_dir_all(cache.root.path());
    }
}

fn cache() -> Result<&'static Cache, Error> {
    CACHE
        .get_or_init(|| {
            remove_abandoned(&std::env::temp_dir());
            let root = tempfile::Builder::new()
                .prefix(CACHE_PREFIX)
                .tempdir()
                .map_err(|e| e.to_string())?;
            let lock = lock(root.path()).map_err(|e| e.to_string())?;
            Ok(Cache {
                root,
                mirrors: Mutex::new(Vec::new()),
                _lock: lock,
            })
        })
        .as_ref()
        .map_err(|e| {
            Error::Store(format!(
                "cannot create the local cache for remote models in '{}': {e}",
                std::env::temp_dir().display()
            ))
        })
}

/// Creates the lock file of the cache `root`, locked. It is locked under another name and
/// then renamed into place, so that no other process ever finds `.lock` unlocked while this
/// one lives.
fn lock(root: &Path) -> std::io::Result<std::fs::File> {
    let pending = root.join(".lock-pending");
    let file = std::fs::File::create(&pending)?;
    file.try_lock().map_err(std::io::Error::other)?;
    std::fs::rename(&pending, root.join(LOCK_FILE))?;
    Ok(file)
}

/// Removes the caches under `temp` left by servers that are gone: those whose lock this
/// process can take. A cache without a lock file (being created now) is left alone, and so is
/// anything that cannot be read: this is tidying, never an error.
fn remove_abandoned(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for entry in entries.flatten() {
        let is_cache = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(CACHE_PREFIX));
        // Not followed through links: only real directories are caches.
        if !is_cache || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = entry.path();
        let Ok(file) = std::fs::File::open(dir.join(LOCK_FILE)) else {
            continue;
        };
        if file.try_lock().is_ok() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

fn latest_one(numbers: &[i64]) -> BTreeSet<i64> {
    numbers.iter().max().copied().into_iter().collect()
}

/// The local directory that stands for the remote base path (or SavedModel) `url`, synced
/// once now (the latest version, until [`select`] says otherwise). The same URL gets the same
/// directory for the life of the process.
pub fn mirror(url: &RemoteUrl) -> Result<PathBuf, Error> {
    let cache = cache()?;
    let mut mirrors = cache.mirrors.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(m) = mirrors.iter().find(|m| m.url == *url) {
        return Ok(m.dir.clone());
    }
    let remote = Remote::connect(url)?;
    let dir = cache.root.path().join(format!("{}", mirrors.len()));
    let local = |source| Error::Local {
        url: url.to_string(),
        dir: dir.clone(),
        source,
    };
    std::fs::create_dir(&dir).map_err(local)?;
    // A listing first: its errors say what is wrong (a HEAD's carry no words).
    let versions = remote.versions(&url.prefix)?;
    // A SavedModel at the URL itself is served as version 1 and copied once.
    let graph = [PB_FILE, PBTXT_FILE]
        .into_iter()
        .map(|f| remote.size(&url.join(f).prefix))
        .collect::<Result<Vec<_>, _>>()?;
    if versions.is_empty() && graph.iter().any(Option::is_some) {
        let model = dir.join("model");
        download_version(&remote, url, &model)?;
        return Ok(model);
    }
    let mirror = Arc::new(Mirror {
        url: url.clone(),
        dir: dir.clone(),
        select: Mutex::new(Arc::new(latest_one)),
        syncing: Mutex::new(()),
        remote,
    });
    sync(&mirror)?;
    mirrors.push(mirror);
    Ok(dir)
}

/// Sets which versions the mirror of the cache directory `dir` keeps, and syncs it now.
pub fn select(dir: &Path, selector: Selector) -> Result<(), Error> {
    let mirror = {
        let mirrors = cache()?.mirrors.lock().unwrap_or_else(|p| p.into_inner());
        mirrors.iter().find(|m| m.dir == dir).cloned()
    };
    let Some(mirror) = mirror else {
        return Ok(());
    };
    *mirror.select.lock().unwrap_or_else(|p| p.into_inner()) = selector;
    sync(&mirror)
}

/// Syncs every mirror every `every`, on a thread of its own, for the life of the process. A
/// sync that fails (the bucket unreachable, say) changes nothing in the cache and is logged.
pub fn start_polling(every: Duration) {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        std::thread::spawn(move || loop {
            std::thread::sleep(every);
            let Ok(cache) = cache() else { return };
            let mirrors: Vec<Arc<Mirror>> = cache
                .mirrors
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            for m in mirrors {
                if let Err(e) = sync(&m) {
                    eprintln!("smtool serve: warning: {e}");
                }
            }
        });
    });
}

/// The numbered version directories in the cache directory `dir`.
fn cached(dir: &Path) -> BTreeSet<i64> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeSet::new();
    };
    entries
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()
                .and_then(savedmodel::parse_version)
        })
        .collect()
}

fn sync(m: &Mirror) -> Result<(), Error> {
    let _syncing = m.syncing.lock().unwrap_or_else(|p| p.into_inner());
    let versions = m.remote.versions(&m.url.prefix)?;
    let numbers: Vec<i64> = versions.iter().map(|(n, _)| *n).collect();
    let select = m.select.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let wanted = select(&numbers);
    let have = cached(&m.dir);
    for (number, name) in &versions {
        if !wanted.contains(number) || have.contains(number) {
            continue;
        }
        let url = m.url.join(name);
        let target = m.dir.join(number.to_string());
        let partial = m.dir.join(format!(".partial-{number}"));
        match download_version(&m.remote, &url, &partial) {
            Ok(()) => std::fs::rename(&partial, &target).map_err(|source| Error::Local {
                url: url.to_string(),
                dir: target.clone(),
                source,
            })?,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&partial);
                match e {
                    // Still being uploaded: the next poll looks again.
                    Error::Incomplete { ref detail, .. } if detail == NO_GRAPH_YET => {}
                    // Whole by its graph file, yet not whole: said, and looked at again.
                    Error::Incomplete { .. } => eprintln!("smtool serve: warning: {e}"),
                    e => return Err(e),
                }
            }
        }
    }
    let have = cached(&m.dir);
    if wanted.is_subset(&have) {
        for old in have.difference(&wanted) {
            let dir = m.dir.join(old.to_string());
            let gone = m.dir.join(format!(".removed-{old}"));
            if std::fs::rename(&dir, &gone).is_ok() {
                let _ = std::fs::remove_dir_all(&gone);
            }
        }
    }
    Ok(())
}

const NO_GRAPH_YET: &str = "it has no saved_model.pb yet";

/// Downloads the SavedModel at `url` into `dir` (created), and checks it is whole.
fn download_version(remote: &Remote, url: &RemoteUrl, dir: &Path) -> Result<(), Error> {
    let number = url
        .prefix
        .rsplit('/')
        .next()
        .and_then(savedmodel::parse_version)
        .unwrap_or(0);
    let incomplete = |detail: String| Error::Incomplete {
        url: url.to_string(),
        number,
        detail,
    };
    let objects = remote.list(&url.prefix, MAX_OBJECTS)?;
    if !objects
        .iter()
        .any(|o| o.rel == PB_FILE || o.rel == PBTXT_FILE)
    {
        return Err(incomplete(NO_GRAPH_YET.into()));
    }
    let local = |source| Error::Local {
        url: url.to_string(),
        dir: dir.to_path_buf(),
        source,
    };
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(local)?;
    let kept = lay_out(dir, &objects).map_err(local)?;
    let jobs = kept
        .iter()
        .filter(|(_, size)| **size > 0)
        .map(|(rel, size)| (url.join(rel).prefix, *size, dir.join(rel)))
        .collect();
    remote.download(jobs)?;
    check_whole(dir).map_err(incomplete)
}

/// Every variable shard the index names is there and holds the bytes the index points at.
fn check_whole(dir: &Path) -> Result<(), String> {
    let index_path = dir.join(VARIABLES_INDEX);
    if !index_path.is_file() {
        return Ok(());
    }
    let index = BundleIndex::read(&index_path).map_err(|e| e.to_string())?;
    let mut sizes = Vec::new();
    for shard in index.shard_names("variables") {
        let path = dir.join(savedmodel::VARIABLES_DIR).join(&shard);
        let size = std::fs::metadata(&path)
            .map_err(|_| format!("variable shard '{shard}' is missing"))?
            .len();
        sizes.push(size);
    }
    for e in &index.entries {
        let Some(size) = usize::try_from(e.entry.shard_id)
            .ok()
            .and_then(|i| sizes.get(i))
        else {
            continue;
        };
        let end = e.entry.offset.saturating_add(e.entry.size);
        if u64::try_from(end).map_or(true, |end| end > *size) {
            return Err(format!(
                "variable '{}' lies past the end of shard {} ({size} bytes)",
                e.key, e.entry.shard_id
            ));
        }
    }
    Ok(())
}
