//! The models a server holds: which versions each model should serve (version policy), loading
//! them into TensorFlow sessions, version labels, and the poller that follows the version
//! directories on disk. A request holds an `Arc` of the version it started on, so unloading a
//! version never interrupts a request in flight.
//!
//! Transitions follow TF Serving's availability-preserving policy: a version the policy no
//! longer wants is unloaded only once a wanted version is available (or none is wanted any
//! more), so a successor that fails to load, or whose directory is still being copied, leaves
//! its predecessor serving. A version that failed is tried again when its files change (seen
//! by a [`version_dir::Signature`] of the directory) and, with the same files, up to
//! `--max_num_load_retries` more times `--load_retry_interval_micros` apart. The poller loads
//! a version that appears (or changes) once its files are the same at two looks in a row, so a
//! copy in progress is not loaded half-written; start-up, and a config reload for the models
//! it adds or changes, load at once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::config::{ModelConfig, ReloadError, SINGLE_VERSION};
use super::error::ServeError;
use super::metrics::Metrics;
use super::servable::{self, LoadOptions, Servable};
use super::tf::TensorFlow;
use super::version_dir::{self, Scan, Signature};
use super::warmup::Warmup;
use crate::savedmodel;

/// Where a version is in its life (TF Serving's `ModelVersionStatus.State`), with the load
/// error of a version that failed.
#[derive(Clone)]
pub enum VersionState {
    Loading,
    Available(Arc<Servable>),
    /// Unloaded, or failed to load when `error` is set.
    End {
        error: Option<ServeError>,
    },
}

struct Model {
    config: ModelConfig,
    versions: BTreeMap<i64, VersionState>,
    /// In the server's current config. A model a config reload removed keeps its versions'
    /// final states (`END`, as TF Serving reports them) but is no longer polled.
    served: bool,
    /// The version directories found at the last look.
    on_disk: BTreeMap<i64, PathBuf>,
    /// Versions waiting for their files to settle, with the signature seen at the last look.
    settling: BTreeMap<i64, Signature>,
    /// Wanted versions that failed to load, for retries.
    failures: BTreeMap<i64, Failure>,
}

impl Model {
    fn new(config: ModelConfig) -> Self {
        Model {
            config,
            versions: BTreeMap::new(),
            served: true,
            on_disk: BTreeMap::new(),
            settling: BTreeMap::new(),
            failures: BTreeMap::new(),
        }
    }
}

/// A version that failed to load: the files it failed with, how many attempts failed with
/// them, and when the last one ended.
#[derive(Debug, Clone, Copy)]
struct Failure {
    signature: Signature,
    attempts: u32,
    at: Instant,
}

/// How a version that failed to load is tried again (TF Serving's `--max_num_load_retries`
/// and `--load_retry_interval_micros`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadRetries {
    /// Attempts after the first failure while the files stay the same (0: one attempt).
    pub max_retries: u32,
    /// The wait after a failed attempt before the next.
    pub interval: Duration,
}

impl Default for LoadRetries {
    /// TF Serving's defaults: 5 retries, a minute apart.
    fn default() -> Self {
        LoadRetries {
            max_retries: 5,
            interval: Duration::from_secs(60),
        }
    }
}

impl LoadRetries {
    /// The failed version may be tried again with the same files now.
    fn due(&self, f: &Failure) -> bool {
        f.attempts <= self.max_retries && f.at.elapsed() >= self.interval
    }

    /// TF Serving's flags: the retry count is an int32 its manager keeps unsigned (so a
    /// negative count retries without end), and a negative interval means no wait.
    pub fn from_flags(max_num_load_retries: i32, load_retry_interval_micros: i64) -> Self {
        LoadRetries {
            max_retries: max_num_load_retries as u32,
            interval: Duration::from_micros(load_retry_interval_micros.max(0) as u64),
        }
    }
}

/// How a look at the model directories treats versions that are not loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Look {
    /// Load what is there now (start-up, and models a config reload adds or changes, as TF
    /// Serving does).
    Now,
    /// The poller: a new or changed version is loaded once its files are the same at two
    /// looks in a row.
    Settled,
    /// No listing (the poller is off): only failed versions whose retry is due.
    RetriesOnly,
}

/// A wanted version that is not loaded, looked at before deciding to load it.
struct Candidate {
    version: i64,
    dir: PathBuf,
    failure: Option<Failure>,
    scan: Scan,
}

/// All models of a server.
pub struct ModelManager {
    tf: &'static TensorFlow,
    models: RwLock<BTreeMap<String, Model>>,
    metrics: Arc<Metrics>,
    options: ManagerOptions,
    /// Held while the versions on disk are compared with the loaded ones and the difference
    /// loaded and unloaded, so the poller and a config reload never do it at once.
    polling: std::sync::Mutex<()>,
}

/// What a request asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionRequest {
    Latest,
    Specific(i64),
    Label(String),
}

/// How a model manager loads versions and retries failed loads.
#[derive(Default)]
pub struct ManagerOptions {
    /// The session config and tag-set of every version.
    pub load: LoadOptions,
    pub retries: LoadRetries,
    /// Run between loading a version and making it available; an error fails the load.
    pub warmup: Option<Warmup>,
}

/// Why no servable answers a request (the caller words the TF Serving error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// No such model, or no such (loaded) version.
    NotFound,
    /// The label names no version.
    UnknownLabel,
}

fn read_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

impl ModelManager {
    /// A manager with these models, none loaded yet (call [`ModelManager::poll_now`]), that
    /// records loads in `metrics`.
    pub fn new(
        tf: &'static TensorFlow,
        configs: Vec<ModelConfig>,
        metrics: Arc<Metrics>,
        options: ManagerOptions,
    ) -> Self {
        let models: BTreeMap<String, Model> = configs
            .into_iter()
            .map(|config| (config.name.clone(), Model::new(config)))
            .collect();
        metrics.set_models(
            models
                .values()
                .map(|m| (m.config.name.as_str(), m.config.path.as_path())),
        );
        ModelManager {
            tf,
            models: RwLock::new(models),
            metrics,
            options,
            polling: std::sync::Mutex::new(()),
        }
    }

    fn load_retries(&self) -> LoadRetries {
        self.options.retries
    }

    /// The names of the models in the current config.
    pub fn names(&self) -> Vec<String> {
        read_lock(&self.models)
            .iter()
            .filter(|(_, m)| m.served)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The configs of the models served now.
    pub fn configs(&self) -> Vec<ModelConfig> {
        read_lock(&self.models)
            .values()
            .filter(|m| m.served)
            .map(|m| m.config.clone())
            .collect()
    }

    /// Replaces the served models with `configs` (TF Serving's `ReloadConfig`): models not in
    /// it are unloaded, new ones loaded, and changed version policies and labels applied; the
    /// loads and unloads are done when it returns. A label may keep its version or be new
    /// whatever the state of its version, but moving a label needs the version it moves to
    /// to be available (else nothing changes). Models that are new in `configs` must end
    /// with an available version; the others' load errors show in their status as usual.
    pub fn reload(&self, configs: Vec<ModelConfig>) -> Result<(), ReloadError> {
        let _polling = self.polling.lock().unwrap_or_else(|p| p.into_inner());
        // Models added or whose versions the new config picks differently are looked at now;
        // the others as the poller looks, so a re-read of an unchanged config file does not
        // load a version that is still being copied.
        let mut changed = BTreeSet::new();
        let added: Vec<String> = {
            let mut models = write_lock(&self.models);
            for config in &configs {
                let Some(old) = models.get(&config.name).filter(|m| m.served) else {
                    continue;
                };
                for (label, &version) in &config.labels {
                    let moved = old
                        .config
                        .labels
                        .get(label)
                        .is_some_and(|&before| before != version);
                    let available =
                        matches!(old.versions.get(&version), Some(VersionState::Available(_)));
                    if moved && !available {
                        return Err(ReloadError::LabelToUnavailable(
                            config.name.clone(),
                            version,
                        ));
                    }
                }
            }
            let wanted: BTreeSet<&str> = configs.iter().map(|c| c.name.as_str()).collect();
            for (name, model) in models.iter_mut() {
                if model.served && !wanted.contains(name.as_str()) {
                    tracing::info!(model = %name, "removed from the config");
                    model.served = false;
                    // Its labels go with it, and versions that failed are tried again if the
                    // model comes back (TF Serving forgets both once a model is unaspired).
                    model.config.labels.clear();
                    model.failures.clear();
                    model.settling.clear();
                    for (v, state) in model.versions.iter_mut() {
                        match state {
                            VersionState::Available(_) => {
                                tracing::info!(model = %name, version = *v, "unloaded");
                                *state = VersionState::End { error: None };
                            }
                            VersionState::End { error: Some(_) } => {
                                *state = VersionState::End { error: None };
                            }
                            _ => {}
                        }
                    }
                }
            }
            let mut added = Vec::new();
            for config in configs {
                match models.get_mut(&config.name) {
                    Some(model) => {
                        if !model.served {
                            added.push(config.name.clone());
                        }
                        let old = &model.config;
                        if !model.served
                            || (&old.path, old.single, &old.policy)
                                != (&config.path, config.single, &config.policy)
                        {
                            changed.insert(config.name.clone());
                        }
                        model.served = true;
                        model.config = config;
                    }
                    None => {
                        added.push(config.name.clone());
                        changed.insert(config.name.clone());
                        models.insert(config.name.clone(), Model::new(config));
                    }
                }
            }
            added
        };
        // Series of models that left the config go with them.
        let served = self.configs();
        self.metrics
            .set_models(served.iter().map(|c| (c.name.as_str(), c.path.as_path())));
        self.look(|name| {
            if changed.contains(name) {
                Look::Now
            } else {
                Look::Settled
            }
        });
        let models = read_lock(&self.models);
        let mut missing = Vec::new();
        for name in added {
            let Some(model) = models.get(&name) else {
                continue;
            };
            if model
                .versions
                .values()
                .any(|s| matches!(s, VersionState::Available(_)))
            {
                continue;
            }
            let failures: Vec<_> = model
                .versions
                .iter()
                .filter_map(|(v, s)| match s {
                    VersionState::End { error: Some(e) } => {
                        Some((name.clone(), Some((*v, e.clone()))))
                    }
                    _ => None,
                })
                .collect();
            if failures.is_empty() {
                missing.push((name, None));
            } else {
                missing.extend(failures);
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ReloadError::NotAvailable(missing))
        }
    }

    /// Loads the versions the policy wants from what is on disk now (start-up).
    pub fn poll_now(&self) {
        let _polling = self.polling.lock().unwrap_or_else(|p| p.into_inner());
        self.look(|_| Look::Now);
    }

    /// The poller's look at every model's directory: loads wanted versions whose files have
    /// settled, retries failed ones whose files changed or whose retry is due, then unloads
    /// versions the policy no longer wants as the availability-preserving policy allows.
    pub fn poll(&self) {
        let _polling = self.polling.lock().unwrap_or_else(|p| p.into_inner());
        self.look(|_| Look::Settled);
    }

    /// Retries the failed versions whose retry is due, without looking for new versions (for
    /// a server whose poller is off).
    pub fn retry_due(&self) {
        let retries = self.load_retries();
        let any_due = read_lock(&self.models)
            .values()
            .any(|m| m.served && m.failures.values().any(|f| retries.due(f)));
        if !any_due {
            return;
        }
        let _polling = self.polling.lock().unwrap_or_else(|p| p.into_inner());
        self.look(|_| Look::RetriesOnly);
    }

    /// One look at every served model, each the way `look` says, with `polling` held by the
    /// caller.
    fn look(&self, look: impl Fn(&str) -> Look) {
        let names: Vec<String> = read_lock(&self.models)
            .iter()
            .filter(|(_, m)| m.served)
            .map(|(name, _)| name.clone())
            .collect();
        for name in names {
            self.look_at(&name, look(&name));
        }
    }

    fn look_at(&self, name: &str, look: Look) {
        let retries = self.load_retries();
        let due = |f: &Failure| retries.due(f);
        let Some((config, known)) = read_lock(&self.models)
            .get(name)
            .map(|m| (m.config.clone(), m.on_disk.clone()))
        else {
            return;
        };
        let on_disk = match look {
            Look::RetriesOnly => known,
            // A base path that cannot be read changes nothing.
            Look::Now | Look::Settled => match self.on_disk(&config) {
                Some(found) => found,
                None => return,
            },
        };
        let numbers: Vec<i64> = on_disk.keys().copied().collect();
        let wanted = config.policy.select(&numbers);
        // The wanted versions that are not loaded, highest first (TF Serving loads the
        // highest new version first), scanned without holding the lock.
        let unloaded: Vec<(i64, PathBuf, Option<Failure>)> = {
            let models = read_lock(&self.models);
            let Some(model) = models.get(name) else {
                return;
            };
            wanted
                .iter()
                .rev()
                .filter(|v| {
                    !matches!(
                        model.versions.get(v),
                        Some(VersionState::Available(_) | VersionState::Loading)
                    )
                })
                .filter_map(|v| {
                    let failure = model.failures.get(v).copied();
                    let retry = failure.as_ref().is_some_and(due);
                    if look == Look::RetriesOnly && !retry {
                        return None;
                    }
                    Some((*v, on_disk.get(v)?.clone(), failure))
                })
                .collect()
        };
        let candidates: Vec<Candidate> = unloaded
            .into_iter()
            .map(|(version, dir, failure)| Candidate {
                scan: version_dir::scan(&dir),
                version,
                dir,
                failure,
            })
            .collect();
        let to_load: Vec<Candidate> = {
            let mut models = write_lock(&self.models);
            let Some(model) = models.get_mut(name) else {
                return;
            };
            if look != Look::RetriesOnly {
                model.on_disk = on_disk.clone();
            }
            // Failures of versions no longer wanted are forgotten, so a version wanted again
            // loads afresh (TF Serving stops managing a failed version once it is unaspired).
            model.failures.retain(|v, _| wanted.contains(v));
            model.settling.retain(|v, _| wanted.contains(v));
            // Failures whose directory is gone leave the status too.
            model.versions.retain(|v, state| {
                !matches!(state, VersionState::End { error: Some(_) }) || on_disk.contains_key(v)
            });
            let mut list = Vec::new();
            for mut c in candidates {
                let signature = c.scan.signature;
                let changed = c.failure.is_none_or(|f| f.signature != signature);
                if changed {
                    if look == Look::Settled && model.settling.get(&c.version) != Some(&signature) {
                        model.settling.insert(c.version, signature);
                        continue;
                    }
                    // New files: their attempts count afresh.
                    c.failure = None;
                } else if !c.failure.as_ref().is_some_and(due) {
                    continue;
                }
                model.settling.remove(&c.version);
                model.versions.insert(c.version, VersionState::Loading);
                list.push(c);
            }
            list
        };
        for c in to_load {
            let attempt = c.failure.map_or(1, |f| f.attempts + 1);
            if attempt > 1 {
                tracing::info!(model = %name, version = c.version, "Retrying load, retry: {}", attempt - 1);
            }
            let state = match self.load_version(name, &c) {
                Ok(servable) => {
                    tracing::info!(model = %name, version = c.version, "loaded");
                    VersionState::Available(servable)
                }
                Err(e) => {
                    tracing::warn!(model = %name, version = c.version, error = %e.message, "failed to load");
                    VersionState::End { error: Some(e) }
                }
            };
            let failed = matches!(state, VersionState::End { .. });
            let mut models = write_lock(&self.models);
            let Some(model) = models.get_mut(name) else {
                continue;
            };
            model.versions.insert(c.version, state);
            if failed {
                model.failures.insert(
                    c.version,
                    Failure {
                        signature: c.scan.signature,
                        attempts: attempt,
                        at: Instant::now(),
                    },
                );
            } else {
                model.failures.remove(&c.version);
            }
        }
        let mut models = write_lock(&self.models);
        if let Some(model) = models.get_mut(name).filter(|m| m.served) {
            // Availability-preserving: while versions are wanted but none is available, the
            // highest version no longer wanted keeps serving.
            let available =
                |v: &i64| matches!(model.versions.get(v), Some(VersionState::Available(_)));
            let keep = if !wanted.is_empty() && !wanted.iter().any(available) {
                model
                    .versions
                    .iter()
                    .rev()
                    .find(|(v, s)| matches!(s, VersionState::Available(_)) && !wanted.contains(v))
                    .map(|(v, _)| *v)
            } else {
                None
            };
            for (v, state) in model.versions.iter_mut() {
                if matches!(state, VersionState::Available(_))
                    && !wanted.contains(v)
                    && keep != Some(*v)
                {
                    tracing::info!(model = %name, version = *v, "unloaded");
                    *state = VersionState::End { error: None };
                }
            }
        }
    }

    /// Loads one version with the checks of [`servable::load_version`], records TensorFlow's
    /// load in the metrics, and warms the version up.
    fn load_version(&self, name: &str, c: &Candidate) -> Result<Arc<Servable>, ServeError> {
        servable::check_dir(&c.scan)?;
        let started = Instant::now();
        let loaded = Servable::load(self.tf, name, c.version, &c.dir, &self.options.load);
        self.metrics.load(&c.dir, loaded.is_ok(), started.elapsed());
        let servable = Arc::new(loaded?);
        servable::check_variables(&servable, &c.dir, &c.scan)?;
        if let Some(warmup) = &self.options.warmup {
            warmup.run(&servable, &c.dir)?;
        }
        Ok(servable)
    }

    /// The version directories of a model; `None` when the base path cannot be read (then
    /// nothing changes: a directory that is briefly unreadable must not unload the model).
    fn on_disk(&self, config: &ModelConfig) -> Option<BTreeMap<i64, PathBuf>> {
        if config.single {
            return Some(BTreeMap::from([(SINGLE_VERSION, config.path.clone())]));
        }
        match savedmodel::versions(&config.path) {
            Ok(found) => Some(found.into_iter().map(|v| (v.number, v.dir)).collect()),
            Err(e) => {
                tracing::warn!(model = %config.name, error = %e, "cannot list versions");
                None
            }
        }
    }

    /// The servable a request should run on.
    pub fn servable(
        &self,
        name: &str,
        version: &VersionRequest,
    ) -> Result<Arc<Servable>, Unavailable> {
        let models = read_lock(&self.models);
        let model = models.get(name).ok_or(Unavailable::NotFound)?;
        let number = match version {
            VersionRequest::Latest => {
                return model
                    .versions
                    .values()
                    .rev()
                    .find_map(|s| match s {
                        VersionState::Available(s) => Some(s.clone()),
                        _ => None,
                    })
                    .ok_or(Unavailable::NotFound)
            }
            VersionRequest::Specific(v) => *v,
            VersionRequest::Label(label) => *model
                .config
                .labels
                .get(label)
                .ok_or(Unavailable::UnknownLabel)?,
        };
        match model.versions.get(&number) {
            Some(VersionState::Available(s)) => Ok(s.clone()),
            _ => Err(Unavailable::NotFound),
        }
    }

    /// The version a label points at.
    pub fn label(&self, name: &str, label: &str) -> Option<i64> {
        read_lock(&self.models)
            .get(name)?
            .config
            .labels
            .get(label)
            .copied()
    }

    /// The states of a model's versions, highest first; `None` for an unknown model.
    pub fn states(&self, name: &str) -> Option<Vec<(i64, VersionState)>> {
        let models = read_lock(&self.models);
        let model = models.get(name)?;
        Some(
            model
                .versions
                .iter()
                .rev()
                .map(|(v, s)| (*v, s.clone()))
                .collect(),
        )
    }
}
