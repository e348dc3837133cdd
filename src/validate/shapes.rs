//! Shape rules: classify outputs rank 2 with the same class count, regress output `[n]` or
//! `[n, 1]`, and inputs whose leading dimension is fixed (they cannot be batched).

use crate::proto::tensorflow as tf;
use crate::proto_ext::{dims, shape_text};
use crate::signature::{
    self, Endpoint, CLASSIFY_CLASSES, CLASSIFY_SCORES, REGRESS_OUTPUTS, RESERVED_KEYS,
};

use super::{Context, Finding, Rule};

fn classify_shapes(key: &str, sig: &tf::SignatureDef) -> Option<Finding> {
    let mut problems = Vec::new();
    let mut k = Vec::new();
    for name in [CLASSIFY_CLASSES, CLASSIFY_SCORES] {
        let Some(info) = sig.outputs.get(name) else {
            continue;
        };
        let Some(d) = dims(info.tensor_shape.as_ref()) else {
            continue;
        };
        if d.len() != 2 {
            problems.push(format!(
                "output '{name}' has shape {}, rank {} (must be rank 2 [batch, classes])",
                shape_text(info.tensor_shape.as_ref()),
                d.len()
            ));
        } else if d[1] >= 0 {
            k.push((name, d[1]));
        }
    }
    if let [(a, ka), (b, kb)] = k[..] {
        if ka != kb {
            problems.push(format!(
                "'{a}' has {ka} classes but '{b}' has {kb} (TF Serving pairs them column by column)"
            ));
        }
    }
    (!problems.is_empty()).then(|| {
        Finding::new(
            Rule::ClassifyShape,
            format!(
                "TF Serving's :classify will fail after running the model: {}; reshape the \
                 outputs to [batch, classes] with the same number of classes",
                problems.join("; ")
            ),
        )
        .signature(key)
    })
}

fn regress_shape(key: &str, sig: &tf::SignatureDef) -> Option<Finding> {
    let info = sig.outputs.get(REGRESS_OUTPUTS)?;
    let d = dims(info.tensor_shape.as_ref())?;
    let ok = d.len() == 1 || (d.len() == 2 && matches!(d[1], 1 | -1));
    (!ok).then(|| {
        Finding::new(
            Rule::RegressShape,
            format!(
                "output '{REGRESS_OUTPUTS}' has shape {}; TF Serving's :regress needs [batch] or \
                 [batch, 1] (one value per example); reshape it",
                shape_text(info.tensor_shape.as_ref())
            ),
        )
        .signature(key)
    })
}

/// SM201, SM202, SM203.
pub fn check(ctx: &Context<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (key, sig) in &ctx.meta_graph.signature_def {
        if RESERVED_KEYS.contains(&key.as_str()) {
            continue;
        }
        let method = Endpoint::from_method_name(&sig.method_name);
        // A predict-method signature that TF Serving accepts under :classify (keys and dtypes
        // fit, rank 2) is served there too, so its class counts must agree just the same.
        let classify_like = method == Some(Endpoint::Classify)
            || signature::serving_problems(key, sig, Endpoint::Classify).is_empty();
        if classify_like {
            findings.extend(classify_shapes(key, sig));
        }
        if method == Some(Endpoint::Regress) {
            findings.extend(regress_shape(key, sig));
        }
        for (name, info) in &sig.inputs {
            let Some(d) = dims(info.tensor_shape.as_ref()) else {
                continue;
            };
            if let Some(&first) = d.first() {
                if first >= 0 {
                    findings.push(
                        Finding::new(
                            Rule::FixedBatch,
                            format!(
                                "input '{name}' has shape {}: its leading (batch) dimension is \
                                 fixed at {first}, so requests cannot carry another number of \
                                 rows and TF Serving cannot batch them; export it with None as \
                                 the first dimension",
                                shape_text(info.tensor_shape.as_ref())
                            ),
                        )
                        .signature(key),
                    );
                }
            }
        }
    }
    findings
}
