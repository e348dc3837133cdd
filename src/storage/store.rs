//! One bucket through `object_store`: built from the environment, driven synchronously on a
//! current-thread tokio runtime, with its errors turned into messages that name the URL and
//! the fix.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use super::{Error, RemoteUrl, Scheme};

/// Downloads in flight at once.
const PARALLEL_TRANSFERS: usize = 8;

/// One object under a listed prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The key below the listed prefix, `/`-separated, never empty.
    pub rel: String,
    pub size: u64,
}

/// A bucket and the runtime its requests run on.
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    scheme: Scheme,
    /// The endpoint the environment named, for messages.
    endpoint: Option<String>,
    runtime: tokio::runtime::Runtime,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// TensorFlow's S3 file system read `S3_ENDPOINT` as `host[:port]` and the scheme from
/// `S3_USE_HTTPS` (default on); the AWS variables win when both are set.
fn s3_endpoint() -> Option<String> {
    if let Some(e) = env("AWS_ENDPOINT_URL_S3")
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .or_else(|| env("AWS_ENDPOINT"))
    {
        return Some(e);
    }
    let endpoint = env("S3_ENDPOINT")?;
    if endpoint.contains("://") {
        return Some(endpoint);
    }
    let https = env("S3_USE_HTTPS").is_none_or(|v| v != "0" && !v.eq_ignore_ascii_case("false"));
    Some(format!(
        "{}://{endpoint}",
        if https { "https" } else { "http" }
    ))
}

/// A GCS emulator (fake-gcs-server, say) named as Google's client libraries take it:
/// `STORAGE_EMULATOR_HOST` as `host:port` or a URL, requests sent without credentials.
/// `GOOGLE_BASE_URL` (object_store's own variable, requests signed as usual) wins when both
/// are set.
fn gcs_emulator() -> Option<String> {
    if env("GOOGLE_BASE_URL").is_some() {
        return None;
    }
    let host = env("STORAGE_EMULATOR_HOST")?;
    let host = host.trim_end_matches('/');
    Some(if host.contains("://") {
        host.to_owned()
    } else {
        format!("http://{host}")
    })
}

/// What to check when the server refused the credentials given.
fn bad_key_fix(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::S3 => "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        Scheme::Gcs => "check the key file GOOGLE_APPLICATION_CREDENTIALS names",
    }
}

fn off(name: &str) -> bool {
    env(name).is_some_and(|v| v == "0" || v.eq_ignore_ascii_case("false"))
}

/// Requests are retried a few times, never for minutes: a command line waits on them.
fn retry() -> object_store::RetryConfig {
    object_store::RetryConfig {
        max_retries: 3,
        retry_timeout: Duration::from_secs(30),
        ..Default::default()
    }
}

impl Remote {
    /// Connects to the bucket of `url` with the credentials and endpoint of the environment.
    pub fn connect(url: &RemoteUrl) -> Result<Remote, Error> {
        // reqwest takes its TLS crypto from the process default: ring, the one provider built
        // in (an error only says one is installed already).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Store(format!("cannot start the storage client: {e}")))?;
        let built = |e: object_store::Error| Error::Store(format!("cannot use '{url}': {e}"));
        let (store, endpoint): (Arc<dyn ObjectStore>, _) = match url.scheme {
            Scheme::S3 => {
                use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
                use object_store::ClientConfigKey;
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(&url.bucket)
                    .with_retry(retry());
                let endpoint = s3_endpoint();
                if let Some(e) = &endpoint {
                    builder = builder.with_endpoint(e);
                    if e.starts_with("http://") {
                        // Naming a plain-HTTP endpoint (MinIO on a laptop) is asking for it.
                        builder = builder.with_config(
                            AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp),
                            "true",
                        );
                    }
                }
                if off("S3_VERIFY_SSL") {
                    builder = builder.with_config(
                        AmazonS3ConfigKey::Client(ClientConfigKey::AllowInvalidCertificates),
                        "true",
                    );
                }
                (Arc::new(builder.build().map_err(built)?), endpoint)
            }
            Scheme::Gcs => {
                use object_store::gcp::{GcpCredential, GoogleCloudStorageBuilder};
                let mut builder = GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(&url.bucket)
                    .with_retry(retry());
                let emulator = gcs_emulator();
                if let Some(e) = &emulator {
                    // An empty token, which object_store sends as no credentials at all (its
                    // `disable_oauth`): nothing asks a metadata server or reads a key file.
                    let none = GcpCredential {
                        bearer: String::new(),
                    };
                    builder = builder.with_base_url(e).with_credentials(Arc::new(
                        object_store::StaticCredentialProvider::new(none),
                    ));
                }
                let store = builder.build().map_err(|e| {
                    // Building reads the key file; its errors are about the credentials.
                    let detail = e.to_string();
                    let lower = detail.to_ascii_lowercase();
                    if ["service account", "credential", "pem"]
                        .iter()
                        .any(|w| lower.contains(w))
                    {
                        Error::NoCredentials {
                            url: url.to_string(),
                            fix: bad_key_fix(Scheme::Gcs),
                            detail,
                        }
                    } else {
                        built(e)
                    }
                })?;
                (Arc::new(store), env("GOOGLE_BASE_URL").or(emulator))
            }
        };
        Ok(Remote {
            store,
            bucket: url.bucket.clone(),
            scheme: url.scheme,
            endpoint,
            runtime,
        })
    }

    fn url(&self, key: &str) -> RemoteUrl {
        RemoteUrl {
            scheme: self.scheme,
            bucket: self.bucket.clone(),
            prefix: key.to_owned(),
        }
    }

    /// What went wrong, in words that say what to do.
    fn error(&self, key: &str, err: object_store::Error) -> Error {
        let url = self.url(key).to_string();
        let detail = short_detail(&err.to_string());
        let credentials_fix = match self.scheme {
            Scheme::S3 => {
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or run where an \
                 instance or pod role provides them)"
            }
            Scheme::Gcs => {
                "set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file (or run where \
                 the metadata server provides credentials)"
            }
        };
        let bad_key_fix = bad_key_fix(self.scheme);
        let denied_fix = match self.scheme {
            Scheme::S3 => {
                "the credentials need s3:ListBucket and s3:GetObject on the bucket (and \
                 s3:PutObject, s3:DeleteObject to publish a version)"
            }
            Scheme::Gcs => {
                "the credentials need storage.objects.list and storage.objects.get (and \
                 storage.objects.create, storage.objects.delete to publish a version)"
            }
        };
        let has = |word: &str| detail.contains(word);
        if has("NoSuchBucket") || has("The specified bucket does not exist") {
            return Error::NoSuchBucket {
                url,
                bucket: self.bucket.clone(),
                endpoint: self
                    .endpoint
                    .as_ref()
                    .map(|e| format!(" and the endpoint ({e})"))
                    .unwrap_or_default(),
            };
        }
        if has("InvalidAccessKeyId") || has("SignatureDoesNotMatch") || has("invalid_grant") {
            return Error::NoCredentials {
                url,
                fix: bad_key_fix,
                detail,
            };
        }
        match err {
            object_store::Error::PermissionDenied { .. } => Error::AccessDenied {
                url,
                fix: denied_fix,
                detail,
            },
            object_store::Error::Unauthenticated { .. } => Error::NoCredentials {
                url,
                fix: bad_key_fix,
                detail,
            },
            _ if has("AccessDenied") || has("Forbidden") => Error::AccessDenied {
                url,
                fix: denied_fix,
                detail,
            },
            _ if has("credential") || has("Credential") => Error::NoCredentials {
                url,
                fix: credentials_fix,
                detail,
            },
            _ if has("error sending request") || has("connect") => Error::Unreachable {
                url,
                detail: match &self.endpoint {
                    Some(e) => format!("{detail}; is the endpoint {e} up?"),
                    None => detail,
                },
            },
            _ => Error::Store(format!("'{url}': {detail}")),
        }
    }

    /// Every object under `prefix` (a key prefix without trailing `/`, empty for the whole
    /// bucket), at most `limit` of them.
    pub fn list(&self, prefix: &str, limit: usize) -> Result<Vec<Object>, Error> {
        let base = ObjectPath::from(prefix);
        self.runtime.block_on(async {
            let mut stream = self.store.list((!prefix.is_empty()).then_some(&base));
            let mut found = Vec::new();
            while let Some(item) = stream.next().await {
                let meta = item.map_err(|e| self.error(prefix, e))?;
                let Some(parts) = meta.location.prefix_match(&base) else {
                    continue;
                };
                let rel: Vec<String> = parts.map(|p| p.as_ref().to_owned()).collect();
                if rel.is_empty() {
                    continue;
                }
                if found.len() == limit {
                    return Err(Error::TooManyObjects {
                        url: self.url(prefix).to_string(),
                        limit,
                    });
                }
                found.push(Object {
                    rel: rel.join("/"),
                    size: meta.size,
                });
            }
            Ok(found)
        })
    }

    /// Whether any object lies under `prefix`.
    pub fn any_under(&self, prefix: &str) -> Result<bool, Error> {
        let base = ObjectPath::from(prefix);
        self.runtime.block_on(async {
            match self.store.list(Some(&base)).next().await {
                None => Ok(false),
                Some(Ok(_)) => Ok(true),
                Some(Err(e)) => Err(self.error(prefix, e)),
            }
        })
    }

    /// The size of the object `key`, `None` when there is none.
    pub fn size(&self, key: &str) -> Result<Option<u64>, Error> {
        self.runtime.block_on(async {
            match self.store.head(&ObjectPath::from(key)).await {
                Ok(meta) => Ok(Some(meta.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(self.error(key, e)),
            }
        })
    }

    /// The numbered children of `prefix` (TF Serving's versions), from a delimited listing.
    pub fn versions(&self, prefix: &str) -> Result<Vec<(i64, String)>, Error> {
        let base = ObjectPath::from(prefix);
        let listed = self
            .runtime
            .block_on(
                self.store
                    .list_with_delimiter((!prefix.is_empty()).then_some(&base)),
            )
            .map_err(|e| self.error(prefix, e))?;
        let mut found: Vec<(i64, String)> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| {
                let name = p.filename()?;
                Some((crate::savedmodel::parse_version(name)?, name.to_owned()))
            })
            .collect();
        found.sort();
        found.dedup_by_key(|v| v.0);
        Ok(found)
    }

    /// Downloads each `(key, size, file)`: the object `key`, expected to be `size` bytes, into
    /// the local `file` (created or truncated). An object that is not `size` bytes (it changed
    /// since it was listed) is an error, so nothing is read past what was checked.
    pub fn download(&self, jobs: Vec<(String, u64, std::path::PathBuf)>) -> Result<(), Error> {
        self.runtime.block_on(async {
            let mut results = futures_util::stream::iter(jobs)
                .map(|(key, size, file)| async move { self.download_one(&key, size, &file).await })
                .buffer_unordered(PARALLEL_TRANSFERS);
            while let Some(r) = results.next().await {
                r?;
            }
            Ok(())
        })
    }

    async fn download_one(&self, key: &str, size: u64, file: &Path) -> Result<(), Error> {
        let changed = || {
            Error::Store(format!(
                "'{}' changed while it was read; run again",
                self.url(key)
            ))
        };
        let local = |source| Error::Local {
            url: self.url(key).to_string(),
            dir: file.to_path_buf(),
            source,
        };
        let got = self
            .store
            .get(&ObjectPath::from(key))
            .await
            .map_err(|e| self.error(key, e))?;
        if got.meta.size != size {
            return Err(changed());
        }
        let mut out = std::fs::File::create(file).map_err(local)?;
        let mut stream = got.into_stream();
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.error(key, e))?;
            written = written.saturating_add(chunk.len() as u64);
            if written > size {
                return Err(changed());
            }
            out.write_all(&chunk).map_err(local)?;
        }
        if written != size {
            return Err(changed());
        }
        out.sync_all().map_err(local)
    }

    /// Uploads the local `file` to `key`: small files in one request, larger ones in parts,
    /// so memory stays at a few parts however large the file.
    pub fn upload(&self, file: &Path, key: &str) -> Result<(), Error> {
        use std::io::Read;
        const PART: usize = 8 << 20;
        let local = |source| Error::Local {
            url: self.url(key).to_string(),
            dir: file.to_path_buf(),
            source,
        };
        let (mut input, size) = crate::files::open_regular(file)
            .map_err(|e| local(std::io::Error::other(e.to_string())))?;
        let location = ObjectPath::from(key);
        self.runtime.block_on(async {
            if size <= PART as u64 {
                let mut bytes = Vec::with_capacity(size as usize);
                input.read_to_end(&mut bytes).map_err(local)?;
                self.store
                    .put(&location, bytes.into())
                    .await
                    .map_err(|e| self.error(key, e))?;
                return Ok(());
            }
            let upload = self
                .store
                .put_multipart(&location)
                .await
                .map_err(|e| self.error(key, e))?;
            let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, PART);
            let mut chunk = vec![0u8; PART];
            loop {
                let n = input.read(&mut chunk).map_err(local)?;
                if n == 0 {
                    break;
                }
                writer
                    .wait_for_capacity(PARALLEL_TRANSFERS / 2)
                    .await
                    .map_err(|e| self.error(key, e))?;
                writer.write(&chunk[..n]);
            }
            writer.finish().await.map_err(|e| self.error(key, e))?;
            Ok(())
        })
    }

    /// Copies `from` to `to` inside the bucket.
    pub fn copy(&self, from: &str, to: &str) -> Result<(), Error> {
        self.runtime
            .block_on(
                self.store
                    .copy(&ObjectPath::from(from), &ObjectPath::from(to)),
            )
            .map_err(|e| self.error(to, e))
    }

    /// Deletes `keys`; a key already gone is not an error.
    pub fn delete(&self, keys: &[String]) -> Result<(), Error> {
        self.runtime.block_on(async {
            for key in keys {
                match self.store.delete(&ObjectPath::from(key.as_str())).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(self.error(key, e)),
                }
            }
            Ok(())
        })
    }
}

/// The server's words when its error body is S3's XML (`<Code>` and `<Message>`), else the
/// whole message.
fn short_detail(detail: &str) -> String {
    let field = |name: &str| {
        let start = detail.find(&format!("<{name}>"))? + name.len() + 2;
        let len = detail[start..].find(&format!("</{name}>"))?;
        Some(&detail[start..start + len])
    };
    match (field("Code"), field("Message")) {
        (Some(code), Some(message)) => format!("the server said {code}: {message}"),
        (Some(code), None) => format!("the server said {code}"),
        _ => detail.to_owned(),
    }
}

/// Uploads the local SavedModel directory `dir` as version `number` of the model base path
/// `base`, so that no poller ever sees a partial version.
///
/// Object stores have no atomic rename of a prefix, so the upload goes in two steps: every
/// file is first uploaded under a hidden staging prefix (`BASE/.smtool-upload-N-PID/`, which
/// TF Serving and smtool ignore: its name is not a number), then copied server-side into
/// `BASE/N/` with the graph file (`saved_model.pb`) last, and the staging objects are deleted.
/// An interrupted upload leaves only the hidden prefix. While the copies run, `BASE/N/` lacks
/// its graph file, which smtool's poller requires before it syncs a version; TF Serving, which
/// tries any numbered prefix, fails that one load attempt and keeps serving the version it has.
pub fn publish_version(base: &RemoteUrl, number: i64, dir: &Path) -> Result<(), Error> {
    let remote = Remote::connect(base)?;
    let version = base.join(&number.to_string());
    if remote.any_under(&version.prefix)? {
        return Err(Error::VersionTaken {
            url: version.to_string(),
        });
    }
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(|e| Error::Local {
            url: version.to_string(),
            dir: dir.to_path_buf(),
            source: e.into(),
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let rel: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        files.push((entry.path().to_path_buf(), rel.join("/")));
    }
    // The graph file goes last: its presence says the version is complete.
    let is_graph =
        |rel: &str| rel == crate::savedmodel::PB_FILE || rel == crate::savedmodel::PBTXT_FILE;
    files.sort_by_key(|(_, rel)| is_graph(rel));
    let staging = base.join(&format!(".smtool-upload-{number}-{}", std::process::id()));
    let mut staged = Vec::with_capacity(files.len());
    let result = (|| {
        for (file, rel) in &files {
            let key = staging.join(rel).prefix;
            remote.upload(file, &key)?;
            staged.push(key);
        }
        for (_, rel) in &files {
            remote.copy(&staging.join(rel).prefix, &version.join(rel).prefix)?;
        }
        Ok(())
    })();
    let cleaned = remote.delete(&staged);
    result.and(cleaned)
}
