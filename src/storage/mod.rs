//! Models in object storage: `s3://bucket/prefix` and `gs://bucket/prefix` wherever a command
//! takes a SavedModel or a model base path.
//!
//! Every reader in smtool works on local paths (and TensorFlow's C API loads only local
//! paths), so a remote prefix is turned into a local *view* of it ([`View`]): a temporary
//! directory that mirrors the prefix's listing, in which the few objects a command reads
//! (`saved_model.pb`, `variables/variables.index`, `fingerprint.pb`, a warmup file) are
//! downloaded and every other object is a sparse placeholder of its listed size. A check that
//! looks at whether a shard exists or how big it is sees the truth; no variable shard is ever
//! transferred. Commands that need every byte (add-classify's source, serve's cache) download a
//! whole version. Messages and reports name the URL, never the temporary directory.
//!
//! The object stores come from the `object_store` crate, with credentials and endpoints from the
//! standard environment; the CLI stays synchronous, each call running on a small current-thread
//! tokio runtime. Uploads ([`publish_version`]) write a version so that no poller ever sees a
//! partial one.

mod url;

pub use url::{RemoteUrl, Scheme};

#[cfg(feature = "storage")]
pub mod cache;
#[cfg(feature = "storage")]
mod store;
#[cfg(feature = "storage")]
mod view;

#[cfg(feature = "storage")]
pub use store::{publish_version, Remote};
#[cfg(feature = "storage")]
pub use view::{Fetch, View};

/// Why a remote path could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("'{url}' is not a valid object-storage URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(
        "'{0}' is in object storage, and this smtool was built without the `storage` feature; \
         rebuild it with the feature (it is on by default), or copy the model to a local directory"
    )]
    NotBuiltIn(String),
    #[error("cannot reach '{url}': {detail}")]
    Unreachable { url: String, detail: String },
    #[error("no credentials for '{url}': {fix} ({detail})")]
    NoCredentials {
        url: String,
        fix: &'static str,
        detail: String,
    },
    #[error("access to '{url}' was denied: {fix} ({detail})")]
    AccessDenied {
        url: String,
        fix: &'static str,
        detail: String,
    },
    #[error("bucket '{bucket}' of '{url}' does not exist; check the bucket name{endpoint}")]
    NoSuchBucket {
        url: String,
        bucket: String,
        endpoint: String,
    },
    #[error("'{0}' holds no objects; check the prefix")]
    EmptyPrefix(String),
    #[error(
        "'{url}' holds more than {limit} objects; point at one model's prefix or a smaller tree"
    )]
    TooManyObjects { url: String, limit: usize },
    #[error("'{url}' is {size} bytes, more than the {} limit for {what}", crate::files::human(*limit))]
    TooLarge {
        url: String,
        size: u64,
        limit: u64,
        what: &'static str,
    },
    #[error("version {number} of '{url}' is incomplete: {detail}")]
    Incomplete {
        url: String,
        number: i64,
        detail: String,
    },
    #[error("'{url}' already exists; nothing was uploaded (another writer took that version?); run again")]
    VersionTaken { url: String },
    #[error("cannot write the local copy of '{url}' in '{}': {source}", dir.display())]
    Local {
        url: String,
        dir: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "--out '{0}' is in object storage; write the edited model to a local directory, or \
         publish it as the next version of a remote model base path with --as-next-version"
    )]
    RemoteOutput(String),
    #[error("{0}")]
    Store(String),
    /// An error from a local reader, its paths rewritten to name the remote objects.
    #[error("{0}")]
    Relocated(String),
}

/// The remote URL `path` names, if it names one (`s3://` or `gs://`); `Ok(None)` for a local
/// path.
pub fn remote_url(path: &std::path::Path) -> Result<Option<RemoteUrl>, Error> {
    let Some(text) = path.to_str() else {
        return Ok(None);
    };
    let Some(url) = RemoteUrl::parse(text) else {
        return Ok(None);
    };
    let url = url?;
    if cfg!(feature = "storage") {
        Ok(Some(url))
    } else {
        Err(Error::NotBuiltIn(text.to_owned()))
    }
}

/// Refuses an output directory (`--out`) in object storage: edits are written locally, or
/// published with `--as-next-version`.
pub fn local_output(path: &std::path::Path) -> Result<(), Error> {
    match RemoteUrl::parse(path.to_str().unwrap_or("")) {
        Some(_) => Err(Error::RemoteOutput(path.display().to_string())),
        None => Ok(()),
    }
}
