//! The commands on models in object storage: each opens a local [`View`] of the URL, fetches
//! the objects it will read, runs the local command on the view, and names the URL in its
//! report and errors.

use std::path::{Path, PathBuf};

use crate::savedmodel::{self, Location};
use crate::storage::{self, Fetch, RemoteUrl, View};

use super::add_classify::{self, AddClassifyOptions, AddClassifyReport, Destination};
use super::diff::{self, DiffOptions, DiffReport};
use super::inspect::{self, InspectOptions, InspectReport, VersionSelect};
#[cfg(feature = "serve")]
use super::warmup::{self, WarmupOptions, WarmupReport};
use crate::validate::{self, ValidateError, ValidateOptions, ValidateReport};

/// The model directories of the view that `versions` selects from what its path is; none
/// when the path is not a model or a base path (the local command then says why).
fn selected_dirs(view: &View, versions: VersionSelect) -> Vec<PathBuf> {
    match savedmodel::locate(view.path()) {
        Ok(Location::Model { dir, .. }) => vec![dir],
        Ok(Location::BasePath { versions: vs, .. }) => match versions {
            VersionSelect::All => vs.into_iter().map(|v| v.dir).collect(),
            VersionSelect::Latest => latest_or(view, &vs, None),
            VersionSelect::Specific(n) => latest_or(view, &vs, Some(n)),
        },
        Err(_) => Vec::new(),
    }
}

/// The directory of the version `wanted` (the latest for `None`), if the view has it.
fn latest_or(view: &View, versions: &[savedmodel::Version], wanted: Option<i64>) -> Vec<PathBuf> {
    savedmodel::pick_version(view.path(), versions, wanted)
        .map(|v| v.dir.clone())
        .into_iter()
        .collect()
}

/// `smtool inspect s3://...`: reads the graph file, variables index and fingerprint of the
/// selected versions, never a data shard.
pub fn inspect(opts: &InspectOptions, url: &RemoteUrl) -> Result<InspectReport, storage::Error> {
    let view = View::open(url)?;
    for dir in selected_dirs(&view, opts.versions) {
        view.fetch(&dir, Fetch::Metadata)?;
    }
    let local = InspectOptions {
        path: view.path().to_path_buf(),
        ..opts.clone()
    };
    let mut report = inspect::run(&local).map_err(|e| view.relocate_error(&e))?;
    for m in &mut report.models {
        m.path = view.relocate(&m.path);
        m.graph_file = view.relocate(&m.graph_file);
    }
    Ok(report)
}

/// `smtool validate` with some paths in object storage: each remote path is walked as a
/// directory tree, reading for each model found the objects the rules read (graph file,
/// variables index, fingerprint, warmup file); runs of local paths are validated together as
/// usual. The reports are joined in path order.
pub fn validate(opts: &ValidateOptions) -> Result<ValidateReport, ValidateError> {
    let mut parts = Vec::new();
    let mut local: Vec<PathBuf> = Vec::new();
    let run_local = |paths: &mut Vec<PathBuf>, parts: &mut Vec<ValidateReport>| {
        if !paths.is_empty() {
            let opts = ValidateOptions {
                paths: std::mem::take(paths),
                ..opts.clone()
            };
            parts.push(validate::run(&opts)?);
        }
        Ok::<_, ValidateError>(())
    };
    for path in &opts.paths {
        match storage::remote_url(path)? {
            None => local.push(path.clone()),
            Some(url) => {
                run_local(&mut local, &mut parts)?;
                parts.push(validate_remote(opts, &url)?);
            }
        }
    }
    run_local(&mut local, &mut parts)?;
    let mut parts = parts.into_iter();
    let Some(mut report) = parts.next() else {
        return Err(ValidateError::NothingFound(PathBuf::new()));
    };
    for part in parts {
        let (a, b) = (&mut report.summary, part.summary);
        a.models += b.models;
        a.passed += b.passed;
        a.failed += b.failed;
        a.errors += b.errors;
        a.warnings += b.warnings;
        a.infos += b.infos;
        report.models.extend(part.models);
    }
    Ok(report)
}

fn validate_remote(
    opts: &ValidateOptions,
    url: &RemoteUrl,
) -> Result<ValidateReport, storage::Error> {
    let view = View::open(url)?;
    let targets =
        validate::discover(&[view.path().to_path_buf()]).map_err(|e| view.relocate_error(&e))?;
    for t in &targets {
        if let validate::Target::Model { dir, .. } = t {
            view.fetch(dir, Fetch::MetadataAndWarmup)?;
        }
    }
    let local = ValidateOptions {
        paths: vec![view.path().to_path_buf()],
        ..opts.clone()
    };
    let mut report = validate::run(&local).map_err(|e| view.relocate_error(&e))?;
    for m in &mut report.models {
        m.path = view.relocate(&m.path);
        m.graph_file = m.graph_file.as_deref().map(|g| view.relocate(g));
        for f in &mut m.findings {
            f.model = view.relocate(&f.model);
            f.message = view.relocate(&f.message);
        }
    }
    Ok(report)
}

/// Opens `url` and downloads whole the version an edit reads (`version`, or the latest).
fn open_for_edit(url: &RemoteUrl, version: Option<i64>) -> Result<View, storage::Error> {
    let view = View::open(url)?;
    let select = version.map_or(VersionSelect::Latest, VersionSelect::Specific);
    for dir in selected_dirs(&view, select) {
        view.fetch(&dir, Fetch::Everything)?;
    }
    Ok(view)
}

/// Publishes the edited model the local command wrote into the view as version `number` of
/// `url`; returns the URL it now has.
fn publish(
    view: &View,
    url: &RemoteUrl,
    number: i64,
    dir: &Path,
) -> Result<String, storage::Error> {
    storage::publish_version(url, number, dir)?;
    Ok(view.url_of(dir).to_string())
}

/// `smtool add-classify s3://...`: downloads the version it edits whole, writes the edited
/// model locally (`--out`) or publishes it as the next version of the remote base path
/// (`--as-next-version`, see [`storage::publish_version`]).
pub fn add_classify(
    opts: &AddClassifyOptions,
    url: &RemoteUrl,
) -> Result<AddClassifyReport, storage::Error> {
    let view = open_for_edit(url, opts.edit.version)?;
    let mut local = opts.clone();
    local.edit.src = view.path().to_path_buf();
    let mut report = add_classify::run(&local).map_err(|e| view.relocate_error(&e))?;
    if let (Destination::NextVersion, Some(number)) = (&opts.edit.dst, report.new_version) {
        report.dst = PathBuf::from(publish(&view, url, number, &report.dst)?);
    }
    Ok(report)
}

#[cfg(feature = "serve")]
/// `smtool warmup s3://...`: as [`add_classify`], for a copy with warmup requests.
pub fn warmup(opts: &WarmupOptions, url: &RemoteUrl) -> Result<WarmupReport, storage::Error> {
    let view = open_for_edit(url, opts.edit.version)?;
    // The requests name the model as the bucket does, not as the local view is named.
    let name = url.prefix.rsplit('/').next().filter(|n| !n.is_empty());
    let mut local = opts.clone();
    local.edit.src = view.path().to_path_buf();
    local.model_name = opts
        .model_name
        .clone()
        .or_else(|| Some(name.unwrap_or(&url.bucket).to_owned()));
    let mut report = warmup::run(&local).map_err(|e| view.relocate_error(&e))?;
    if let (Destination::NextVersion, Some(number)) = (&opts.edit.dst, report.new_version) {
        report.dst = publish(&view, url, number, Path::new(&report.dst))?;
    }
    Ok(report)
}

/// `smtool diff` with OLD or NEW in object storage: reads the graph files and variables
/// indexes of the two versions compared.
pub fn diff(opts: &DiffOptions) -> Result<DiffReport, storage::Error> {
    let open = |path: &Path| -> Result<Option<View>, storage::Error> {
        storage::remote_url(path)?
            .map(|u| View::open(&u))
            .transpose()
    };
    let old_view = open(&opts.old)?;
    let new_view = opts.new.as_deref().map(open).transpose()?.flatten();
    let views: Vec<&View> = old_view.iter().chain(new_view.iter()).collect();
    let relocate = |text: &str| views.iter().fold(text.to_owned(), |t, v| v.relocate(&t));
    let local = DiffOptions {
        old: old_view
            .as_ref()
            .map_or_else(|| opts.old.clone(), |v| v.path().to_path_buf()),
        new: match (&new_view, &opts.new) {
            (Some(v), _) => Some(v.path().to_path_buf()),
            (None, new) => new.clone(),
        },
        ..opts.clone()
    };
    let failed = |e: diff::Error| storage::Error::Relocated(relocate(&e.to_string()));
    let (old, new) = diff::resolve_dirs(&local).map_err(failed)?;
    for view in &views {
        view.fetch(&old, Fetch::Metadata)?;
        view.fetch(&new, Fetch::Metadata)?;
    }
    let mut report = diff::run(&local).map_err(failed)?;
    for side in [&mut report.old, &mut report.new] {
        side.path = relocate(&side.path);
        side.graph_file = relocate(&side.graph_file);
    }
    for change in &mut report.changes {
        change.message = relocate(&change.message);
    }
    Ok(report)
}
