//! `smtool validate`: the checks a SavedModel must pass before deployment, without TensorFlow.
//!
//! Each rule family has its own module: `method` (TensorFlow's and TF Serving's signature rules),
//! `shapes`, `binding` (signatures against the graph), `savedmodel_level` (tag-sets, init op,
//! variables, assets, warmup), `security` (ops that touch files or print), `paths` (asset names
//! and symlinks that lead out of the model) and `op_registry`
//! (ops TensorFlow 2.21 does not register). `walk` finds the models under the given paths.

pub mod binding;
pub mod method;
pub mod op_registry;
pub mod paths;
pub mod savedmodel_level;
pub mod security;
pub mod shapes;
mod walk;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::graph::GraphIndex;
use crate::proto::tensorflow as tf;
use crate::savedmodel::{self, SavedModelDir};
use crate::signature::{self, Endpoint};

pub use walk::{discover, Target};

/// How bad a finding is. Errors fail the run; warnings fail it with `--strict`; info never does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// The rule families, in the order they are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Model,
    Method,
    Shapes,
    Binding,
    Security,
    Ops,
}

impl Family {
    pub const ALL: [Family; 6] = [
        Family::Model,
        Family::Method,
        Family::Shapes,
        Family::Binding,
        Family::Security,
        Family::Ops,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Model => "model",
            Family::Method => "method",
            Family::Shapes => "shapes",
            Family::Binding => "binding",
            Family::Security => "security",
            Family::Ops => "ops",
        }
    }
}

macro_rules! rules {
    ($($variant:ident => ($id:literal, $name:literal, $sev:ident, $family:ident),)*) => {
        /// Every rule. IDs and names are stable; docs/rules.md describes each.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Rule { $($variant,)* }

        impl Rule {
            pub const ALL: &'static [Rule] = &[$(Rule::$variant,)*];
            /// The stable ID, e.g. `SM101`.
            pub fn id(self) -> &'static str { match self { $(Rule::$variant => $id,)* } }
            /// The stable short name, e.g. `method-invalid`.
            pub fn name(self) -> &'static str { match self { $(Rule::$variant => $name,)* } }
            pub fn severity(self) -> Severity { match self { $(Rule::$variant => Severity::$sev,)* } }
            pub fn family(self) -> Family { match self { $(Rule::$variant => Family::$family,)* } }
        }
    };
}

rules! {
    ModelUnreadable => ("SM400", "model-unreadable", Error, Model),
    NoServeTagSet => ("SM401", "no-tag-set", Error, Model),
    NoServingDefault => ("SM402", "no-serving-default", Warning, Model),
    ReservedKey => ("SM403", "reserved-key", Error, Model),
    InitOp => ("SM404", "init-op", Error, Model),
    Variables => ("SM405", "variables", Error, Model),
    AssetMissing => ("SM406", "asset-missing", Error, Model),
    Warmup => ("SM407", "warmup-requests", Error, Model),
    MethodInvalid => ("SM101", "method-invalid", Error, Method),
    MethodUnknown => ("SM102", "method-unknown", Warning, Method),
    EndpointMismatch => ("SM103", "endpoint-mismatch", Info, Method),
    RequiredSignature => ("SM104", "required-signature", Error, Method),
    PredictWithoutInputs => ("SM105", "predict-without-inputs", Warning, Method),
    ClassifyShape => ("SM201", "classify-shape", Error, Shapes),
    RegressShape => ("SM202", "regress-shape", Error, Shapes),
    FixedBatch => ("SM203", "fixed-batch-dimension", Warning, Shapes),
    TensorMissing => ("SM301", "tensor-missing", Error, Binding),
    OutputIndex => ("SM302", "output-index", Error, Binding),
    DtypeMismatch => ("SM303", "dtype-mismatch", Error, Binding),
    TensorInfoMalformed => ("SM304", "tensor-info-malformed", Error, Binding),
    UnsafeOp => ("SM501", "unsafe-op", Error, Security),
    AssetPath => ("SM502", "asset-path", Error, Security),
    SymlinkEscape => ("SM503", "symlink-escape", Error, Security),
    UnknownOp => ("SM601", "unknown-op", Error, Ops),
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

/// One problem found in one model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable rule ID (`SM101`).
    pub rule: Rule,
    /// Stable rule name (`method-invalid`).
    pub name: &'static str,
    pub severity: Severity,
    pub family: Family,
    /// The model directory, as found.
    pub model: String,
    /// Tag-set of the meta graph, when the finding is about one.
    pub tags: Option<Vec<String>>,
    pub signature: Option<String>,
    /// Graph node the finding is about, and the library function it sits in (`None`: the
    /// top-level graph).
    pub node: Option<String>,
    pub function: Option<String>,
    /// What is wrong and what to do.
    pub message: String,
}

impl Finding {
    pub fn new(rule: Rule, message: String) -> Self {
        Finding {
            rule,
            name: rule.name(),
            severity: rule.severity(),
            family: rule.family(),
            model: String::new(),
            tags: None,
            signature: None,
            node: None,
            function: None,
            message,
        }
    }

    pub fn signature(mut self, key: &str) -> Self {
        self.signature = Some(key.to_owned());
        self
    }

    pub fn node(mut self, node: &str, function: Option<&str>) -> Self {
        self.node = Some(node.to_owned());
        self.function = function.map(str::to_owned);
        self
    }

    /// Whether this finding fails the run.
    pub fn fails(&self, strict: bool) -> bool {
        match self.severity {
            Severity::Error => true,
            Severity::Warning => strict,
            Severity::Info => false,
        }
    }
}

/// A signature the deployment needs: `--require-signature KEY[=METHOD]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredSignature {
    pub key: String,
    /// The TF Serving endpoint it must be served under, if any.
    pub endpoint: Option<Endpoint>,
}

impl std::str::FromStr for RequiredSignature {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (key, endpoint) = match s.split_once('=') {
            Some((k, m)) => (k, Some(m.parse::<Endpoint>()?)),
            None => (s, None),
        };
        if key.is_empty() {
            return Err(format!(
                "'{s}' names no signature; use KEY or KEY=classify|regress|predict"
            ));
        }
        Ok(RequiredSignature {
            key: key.to_owned(),
            endpoint,
        })
    }
}

/// What to validate and how strictly.
#[derive(Debug, Clone)]
pub struct ValidateOptions {
    /// SavedModels, model base paths or directory trees holding them.
    pub paths: Vec<PathBuf>,
    /// The tag-set to check (TF Serving loads `serve` unless told otherwise).
    pub tag_set: Vec<String>,
    /// Warnings fail the run too.
    pub strict: bool,
    pub require: Vec<RequiredSignature>,
    /// Ops accepted on purpose: not reported by the security or op-registry rules.
    pub allow_ops: BTreeSet<String>,
    /// Worker threads; `None` for the number of CPUs (at most 8).
    pub threads: Option<usize>,
}

impl ValidateOptions {
    pub fn new(paths: Vec<PathBuf>) -> Self {
        ValidateOptions {
            paths,
            tag_set: vec!["serve".to_owned()],
            strict: false,
            require: Vec::new(),
            allow_ops: BTreeSet::new(),
            threads: None,
        }
    }
}

/// One signature of the checked meta graph and how TensorFlow and TF Serving see it.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureSummary {
    pub key: String,
    pub method_name: String,
    /// TensorFlow's `is_valid_signature` for the declared method.
    pub valid: bool,
    /// The endpoints TF Serving accepts it under (its method-name check is off by default).
    pub endpoints: Vec<Endpoint>,
}

/// Pass or fail of one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
}

/// The outcome for one model directory.
#[derive(Debug, Clone, Serialize)]
pub struct ModelResult {
    pub path: String,
    /// The graph file read, when there was one.
    pub graph_file: Option<String>,
    pub status: Status,
    /// The tag-set checked, when the model has it.
    pub tags: Option<Vec<String>>,
    pub signatures: Vec<SignatureSummary>,
    pub findings: Vec<Finding>,
}

/// Counts over the whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub models: usize,
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
}

/// Everything `smtool validate` found.
#[derive(Debug, Clone, Serialize)]
pub struct ValidateReport {
    /// Version of this JSON layout (docs/rules.md).
    pub schema_version: u32,
    pub strict: bool,
    pub tag_set: Vec<String>,
    pub summary: Summary,
    pub models: Vec<ModelResult>,
}

impl ValidateReport {
    /// True when some model fails.
    pub fn failed(&self) -> bool {
        self.summary.failed > 0
    }
}

/// What every check of one meta graph gets.
pub struct Context<'a> {
    pub dir: &'a Path,
    pub meta_graph: &'a tf::MetaGraphDef,
    pub graph: GraphIndex<'a>,
    pub opts: &'a ValidateOptions,
}

/// Why `smtool validate` could not run at all (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error(transparent)]
    Path(#[from] savedmodel::Error),
    #[error(
        "no SavedModel found under '{}' (no saved_model.pb or saved_model.pbtxt in it or any \
         directory below); point at a SavedModel directory, a model base path or a tree that \
         holds them",
        .0.display()
    )]
    NothingFound(PathBuf),
    /// A path in object storage that could not be used.
    #[error(transparent)]
    Storage(#[from] crate::storage::Error),
}

/// Validates every model under `opts.paths`. Fails (exit 2) only when a path cannot be used
/// at all; problems inside a model are findings.
pub fn run(opts: &ValidateOptions) -> Result<ValidateReport, ValidateError> {
    let targets = discover(&opts.paths)?;
    let models = map_bounded(&targets, opts.threads, |t| validate_target(t, opts));
    let mut summary = Summary {
        models: models.len(),
        ..Summary::default()
    };
    for m in &models {
        match m.status {
            Status::Pass => summary.passed += 1,
            Status::Fail => summary.failed += 1,
        }
        for f in &m.findings {
            match f.severity {
                Severity::Error => summary.errors += 1,
                Severity::Warning => summary.warnings += 1,
                Severity::Info => summary.infos += 1,
            }
        }
    }
    Ok(ValidateReport {
        schema_version: 1,
        strict: opts.strict,
        tag_set: opts.tag_set.clone(),
        summary,
        models,
    })
}

/// Applies `f` to every item on a few worker threads, keeping the input order. Each worker holds
/// one model at a time, so memory stays bounded however many models there are.
fn map_bounded<T: Sync, R: Send>(
    items: &[T],
    threads: Option<usize>,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(8)))
        .clamp(1, items.len().max(1));
    if threads == 1 {
        return items.iter().map(&f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        done.push((i, f(item)));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| match w.join() {
                Ok(done) => done,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// Validates one discovered target.
fn validate_target(target: &Target, opts: &ValidateOptions) -> ModelResult {
    let (dir, file) = match target {
        Target::Model { dir, file } => (dir, file.as_deref()),
        Target::Unreadable { dir, reason } => {
            let mut f = Finding::new(Rule::ModelUnreadable, reason.clone());
            f.model = display(dir);
            return finish(dir, None, None, Vec::new(), vec![f], opts.strict);
        }
    };
    let model = match SavedModelDir::open_at(dir, file) {
        Ok(m) => m,
        Err(e) => {
            let mut f = Finding::new(Rule::ModelUnreadable, format!("{e}"));
            f.model = display(dir);
            let graph_file = file
                .map(Path::to_path_buf)
                .or_else(|| SavedModelDir::graph_file(dir).map(|(p, _)| p));
            return finish(
                dir,
                graph_file.as_deref(),
                None,
                Vec::new(),
                vec![f],
                opts.strict,
            );
        }
    };
    let (tags, signatures, mut findings) = validate_model(&model, opts);
    for f in &mut findings {
        f.model = display(dir);
        if f.tags.is_none() && tags.is_some() {
            f.tags.clone_from(&tags);
        }
    }
    finish(
        dir,
        Some(&model.graph_file),
        tags,
        signatures,
        findings,
        opts.strict,
    )
}

fn finish(
    dir: &Path,
    graph_file: Option<&Path>,
    tags: Option<Vec<String>>,
    signatures: Vec<SignatureSummary>,
    mut findings: Vec<Finding>,
    strict: bool,
) -> ModelResult {
    // Model-level first, then by signature, then by rule: the order the text report groups by.
    findings.sort_by(|a, b| {
        (
            a.signature.is_some(),
            &a.signature,
            a.rule,
            &a.function,
            &a.node,
        )
            .cmp(&(
                b.signature.is_some(),
                &b.signature,
                b.rule,
                &b.function,
                &b.node,
            ))
    });
    let status = if findings.iter().any(|f| f.fails(strict)) {
        Status::Fail
    } else {
        Status::Pass
    };
    ModelResult {
        path: display(dir),
        graph_file: graph_file.map(display),
        status,
        tags,
        signatures,
        findings,
    }
}

/// Runs every rule family on the meta graph with the wanted tag-set.
fn validate_model(
    model: &SavedModelDir,
    opts: &ValidateOptions,
) -> (Option<Vec<String>>, Vec<SignatureSummary>, Vec<Finding>) {
    let Some(meta_graph) = model
        .saved_model
        .meta_graphs
        .iter()
        .find(|g| savedmodel::same_tags(&savedmodel::tag_list(g), &opts.tag_set))
    else {
        let available: Vec<String> = model
            .saved_model
            .meta_graphs
            .iter()
            .map(|g| format!("'{}'", savedmodel::tag_list(g).join(",")))
            .collect();
        let wanted = opts.tag_set.join(",");
        let f = Finding::new(
            Rule::NoServeTagSet,
            format!(
                "no meta graph with tag-set '{wanted}' (available: {}): TensorFlow Serving, \
                 loading tag-set '{wanted}', will refuse this model; re-export it with \
                 tags=['{}'] or validate the tag-set you serve with --tag-set",
                if available.is_empty() {
                    "none".to_owned()
                } else {
                    available.join(", ")
                },
                opts.tag_set.join("', '")
            ),
        );
        return (None, Vec::new(), vec![f]);
    };
    let tags = savedmodel::tag_list(meta_graph);
    let empty = tf::GraphDef::default();
    let ctx = Context {
        dir: &model.dir,
        meta_graph,
        graph: GraphIndex::new(meta_graph.graph_def.as_ref().unwrap_or(&empty)),
        opts,
    };
    let signatures = meta_graph
        .signature_def
        .iter()
        .map(|(key, sig)| SignatureSummary {
            key: key.clone(),
            method_name: sig.method_name.clone(),
            valid: signature::is_valid_signature(sig),
            endpoints: signature::endpoints(key, sig),
        })
        .collect();
    let mut findings = Vec::new();
    findings.extend(savedmodel_level::check(&ctx));
    findings.extend(method::check(&ctx));
    findings.extend(shapes::check(&ctx));
    findings.extend(binding::check(&ctx));
    findings.extend(security::check(&ctx));
    findings.extend(paths::check(&ctx));
    findings.extend(op_registry::check(&ctx.graph, &opts.allow_ops));
    (Some(tags), signatures, findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_and_names_are_unique_and_match_their_family() {
        let mut ids = BTreeSet::new();
        let mut names = BTreeSet::new();
        for rule in Rule::ALL {
            assert!(ids.insert(rule.id()), "{}", rule.id());
            assert!(names.insert(rule.name()), "{}", rule.name());
            let digit = match rule.family() {
                Family::Method => '1',
                Family::Shapes => '2',
                Family::Binding => '3',
                Family::Model => '4',
                Family::Security => '5',
                Family::Ops => '6',
            };
            assert_eq!(rule.id().chars().nth(2), Some(digit), "{}", rule.id());
        }
    }

    #[test]
    fn required_signature_arguments() {
        let ok = |s: &str| s.parse::<RequiredSignature>().unwrap();
        assert_eq!(
            ok("serving_default=classify"),
            RequiredSignature {
                key: "serving_default".into(),
                endpoint: Some(Endpoint::Classify)
            }
        );
        assert_eq!(ok("predict").endpoint, None);
        assert!("x=score"
            .parse::<RequiredSignature>()
            .unwrap_err()
            .contains("unknown method 'score'"));
        assert!("=regress".parse::<RequiredSignature>().is_err());
    }

    #[test]
    fn workers_keep_the_input_order() {
        let items: Vec<usize> = (0..100).collect();
        for threads in [None, Some(1), Some(3)] {
            assert_eq!(
                map_bounded(&items, threads, |i| i * 2),
                (0..200).step_by(2).collect::<Vec<_>>()
            );
        }
        assert!(map_bounded(&[] as &[usize], None, |i| *i).is_empty());
    }
}
