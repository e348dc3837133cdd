//! SavedModel-level rules: the default signature, reserved keys, the init op, the variables
//! checkpoint, assets, and the warmup requests TF Serving replays at load time.

use prost::Message;

use crate::proto::tensorflow::serving::{prediction_log::LogType, PredictionLog};
use crate::savedmodel::{
    self, bundle::BundleIndex, tfrecord, InitOpSource, ASSETS_DIR, INIT_OP_KEY, VARIABLES_INDEX,
};
use crate::signature::{DEFAULT_SIGNATURE_KEY, RESERVED_KEYS};

use super::{Context, Finding, Rule};

/// Ops that create variables whose values the checkpoint must hold.
const VARIABLE_OPS: [&str; 4] = ["VarHandleOp", "VariableV2", "Variable", "_VarHandlesOp"];

/// SM402, SM403, SM404, SM405, SM406, SM407.
pub fn check(ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    default_signature(ctx, &mut out);
    reserved_keys(ctx, &mut out);
    init_op(ctx, &mut out);
    variables(ctx, &mut out);
    assets(ctx, &mut out);
    warmup(ctx, &mut out);
    out
}

fn default_signature(ctx: &Context<'_>, out: &mut Vec<Finding>) {
    let sigs = &ctx.meta_graph.signature_def;
    if sigs.contains_key(DEFAULT_SIGNATURE_KEY) {
        return;
    }
    let servable: Vec<String> = sigs
        .keys()
        .filter(|k| !RESERVED_KEYS.contains(&k.as_str()))
        .map(|k| format!("'{k}'"))
        .collect();
    out.push(Finding::new(
        Rule::NoServingDefault,
        format!(
            "no '{DEFAULT_SIGNATURE_KEY}' signature (available: {}): REST and gRPC requests \
             without signature_name will fail; export one as '{DEFAULT_SIGNATURE_KEY}' or make \
             every client name its signature",
            if servable.is_empty() {
                "none".to_owned()
            } else {
                servable.join(", ")
            }
        ),
    ));
}

fn reserved_keys(ctx: &Context<'_>, out: &mut Vec<Finding>) {
    for key in RESERVED_KEYS {
        let Some(sig) = ctx.meta_graph.signature_def.get(key) else {
            continue;
        };
        let mut problems = Vec::new();
        if !sig.inputs.is_empty() {
            problems.push(format!("it has {} input(s)", sig.inputs.len()));
        }
        if sig.outputs.len() != 1 || !sig.outputs.contains_key(key) {
            let keys: Vec<&str> = sig.outputs.keys().map(String::as_str).collect();
            problems.push(format!(
                "its outputs are [{}] instead of exactly one keyed '{key}'",
                keys.join(", ")
            ));
        }
        if !problems.is_empty() {
            out.push(
                Finding::new(
                    Rule::ReservedKey,
                    format!(
                        "signature key '{key}' is reserved for TensorFlow's own op, but {}; \
                         TensorFlow cannot find the op it names and TF Serving does not serve it; \
                         rename the signature",
                        problems.join(" and ")
                    ),
                )
                .signature(key),
            );
        }
    }
}

fn init_op(ctx: &Context<'_>, out: &mut Vec<Finding>) {
    let Some(init) = savedmodel::init_op(ctx.meta_graph) else {
        return;
    };
    let source = match init.source {
        InitOpSource::Signature => format!("signature '{INIT_OP_KEY}'"),
        InitOpSource::MainOp => format!("collection '{}'", savedmodel::MAIN_OP_COLLECTION),
        InitOpSource::LegacyInitOp => {
            format!("collection '{}'", savedmodel::LEGACY_INIT_OP_COLLECTION)
        }
    };
    if init.names.len() != 1 {
        out.push(Finding::new(
            Rule::InitOp,
            format!(
                "the init op ({source}) names {} ops ({}), TensorFlow's loader requires exactly \
                 one and refuses the model; group them into one op (tf.group) and re-export",
                init.names.len(),
                init.names.join(", ")
            ),
        ));
        return;
    }
    let (node, _) = crate::proto_ext::split_tensor_name(&init.names[0]);
    if !ctx.graph.nodes.contains_key(node) {
        out.push(
            Finding::new(
                Rule::InitOp,
                format!(
                    "the init op ({source}) names '{}', but the graph has no node '{node}': \
                     TensorFlow's loader fails; re-export the model",
                    init.names[0]
                ),
            )
            .node(node, None),
        );
    }
}

fn variables(ctx: &Context<'_>, out: &mut Vec<Finding>) {
    let index_path = ctx.dir.join(VARIABLES_INDEX);
    let has_variables =
        crate::ops::all_nodes(ctx.graph.graph).any(|r| VARIABLE_OPS.contains(&r.node.op.as_str()));
    if !index_path.is_file() {
        if has_variables {
            out.push(Finding::new(
                Rule::Variables,
                format!(
                    "the graph has variables but '{}' is missing: TensorFlow would serve \
                     uninitialised variables or fail; copy the whole SavedModel directory, \
                     including variables/",
                    index_path.display()
                ),
            ));
        }
        return;
    }
    let index = match BundleIndex::read(&index_path) {
        Ok(i) => i,
        Err(e) => {
            out.push(Finding::new(Rule::Variables, format!("{e}")));
            return;
        }
    };
    let shards = index.shard_names("variables");
    let mut sizes = Vec::with_capacity(shards.len());
    for shard in &shards {
        let path = ctx.dir.join(savedmodel::VARIABLES_DIR).join(shard);
        match std::fs::metadata(&path) {
            Ok(m) => sizes.push(Some(m.len())),
            Err(_) => {
                out.push(Finding::new(
                    Rule::Variables,
                    format!(
                        "the variables index refers to data shard '{}', which is missing: \
                         TensorFlow cannot restore the variables; copy the whole variables/ \
                         directory",
                        path.display()
                    ),
                ));
                sizes.push(None);
            }
        }
    }
    for e in &index.entries {
        let Some(Some(size)) = usize::try_from(e.entry.shard_id)
            .ok()
            .and_then(|i| sizes.get(i))
        else {
            continue;
        };
        let end = e.entry.offset.saturating_add(e.entry.size);
        if end > 0 && u64::try_from(end).map_or(true, |end| end > *size) {
            out.push(Finding::new(
                Rule::Variables,
                format!(
                    "variable '{}' lies at bytes {}..{end} of shard {}, which has only {size} \
                     bytes: the checkpoint is truncated; restore the variables/ directory",
                    e.key, e.entry.offset, e.entry.shard_id
                ),
            ));
            // One truncated shard explains every later entry; do not repeat it per variable.
            break;
        }
    }
}

fn assets(ctx: &Context<'_>, out: &mut Vec<Finding>) {
    for (tensor, file) in savedmodel::declared_assets(ctx.meta_graph) {
        if savedmodel::unsafe_asset_name(&file).is_some() {
            // SM502 reports it; looking for the file would look outside the model.
            continue;
        }
        let path = ctx.dir.join(ASSETS_DIR).join(&file);
        if file.is_empty() || !path.is_file() {
            out.push(
                Finding::new(
                    Rule::AssetMissing,
                    format!(
                        "the graph names asset '{file}' (fed to '{tensor}'), but '{}' is not \
                         there: TensorFlow fails to load the model; copy the assets/ directory \
                         with the model",
                        path.display()
                    ),
                )
                .node(crate::proto_ext::split_tensor_name(&tensor).0, None),
            );
        }
    }
}

fn warmup(ctx: &Context<'_>, out: &mut Vec<Finding>) {
    let path = ctx.dir.join(savedmodel::WARMUP_FILE);
    if !path.is_file() {
        return;
    }
    let bad = |detail: String| {
        Finding::new(
            Rule::Warmup,
            format!(
                "'{}' {detail}: TF Serving replays these requests when it loads the model and \
                 fails the load; rewrite or remove the file",
                path.display()
            ),
        )
    };
    let limit = crate::files::WARMUP_FILE_LIMIT;
    let bytes = match crate::files::read_capped(&path, limit, "a warmup file") {
        Ok(b) => b,
        Err(e) => return out.push(bad(format!("cannot be read ({e})"))),
    };
    let records = match tfrecord::parse(&bytes) {
        Ok(r) => r,
        Err(e) => return out.push(bad(format!("is not a well-formed TFRecord file: {e}"))),
    };
    let sigs = &ctx.meta_graph.signature_def;
    for (i, record) in records.iter().enumerate() {
        let log = match PredictionLog::decode(*record) {
            Ok(l) => l,
            Err(e) => return out.push(bad(format!("record {i} is not a PredictionLog ({e})"))),
        };
        let (kind, spec, inputs) = match &log.log_type {
            Some(LogType::PredictLog(l)) => {
                let req = l.request.as_ref();
                (
                    "predict",
                    req.and_then(|r| r.model_spec.as_ref()),
                    req.map(|r| r.inputs.keys().cloned().collect::<Vec<_>>()),
                )
            }
            Some(LogType::ClassifyLog(l)) => (
                "classify",
                l.request.as_ref().and_then(|r| r.model_spec.as_ref()),
                None,
            ),
            Some(LogType::RegressLog(l)) => (
                "regress",
                l.request.as_ref().and_then(|r| r.model_spec.as_ref()),
                None,
            ),
            Some(LogType::MultiInferenceLog(_)) => continue,
            _ => {
                return out.push(bad(format!(
                    "record {i} holds no classify, regress, predict or multi-inference request \
                     (TF Serving supports only those for warmup)"
                )))
            }
        };
        let key = spec
            .map(|s| s.signature_name.as_str())
            .filter(|k| !k.is_empty())
            .unwrap_or(DEFAULT_SIGNATURE_KEY);
        let Some(sig) = sigs.get(key) else {
            return out.push(
                bad(format!(
                    "record {i} is a {kind} request for signature '{key}', which the model does \
                     not have"
                ))
                .signature(key),
            );
        };
        for input in inputs.unwrap_or_default() {
            if !sig.inputs.contains_key(&input) {
                return out.push(
                    bad(format!(
                        "record {i} feeds input '{input}', which signature '{key}' does not have"
                    ))
                    .signature(key),
                );
            }
        }
    }
}
