//! Method rules: TensorFlow's static `is_valid_signature` against TF Serving's looser request-time
//! rules, and the signatures a deployment requires (`--require-signature`).

use crate::signature::{self, Endpoint, RESERVED_KEYS};

use super::{Context, Finding, Rule};

fn endpoint_list(endpoints: &[Endpoint]) -> String {
    if endpoints.is_empty() {
        return "no endpoint".to_owned();
    }
    endpoints
        .iter()
        .map(|e| format!(":{}", e.name()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn fix_for(method: Endpoint) -> &'static str {
    match method {
        Endpoint::Classify => {
            "give it exactly one DT_STRING input 'inputs' (serialized tf.Example) and outputs \
             'classes' (DT_STRING) and/or 'scores' (DT_FLOAT), or declare method \
             tensorflow/serving/predict"
        }
        Endpoint::Regress => {
            "give it exactly one DT_STRING input 'inputs' (serialized tf.Example) and exactly one \
             DT_FLOAT output 'outputs', or declare method tensorflow/serving/predict"
        }
        Endpoint::Predict => "give it at least one input and one output, all dense tensors",
    }
}

/// SM101, SM102, SM103, SM104.
pub fn check(ctx: &Context<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (key, sig) in &ctx.meta_graph.signature_def {
        if RESERVED_KEYS.contains(&key.as_str()) {
            continue;
        }
        let endpoints = signature::endpoints(key, sig);
        let Some(method) = Endpoint::from_method_name(&sig.method_name) else {
            findings.push(
                Finding::new(
                    Rule::MethodUnknown,
                    format!(
                        "method name '{}' is none of tensorflow/serving/classify, regress or \
                         predict: TensorFlow's is_valid_signature rejects it and TF Serving serves \
                         it under {} only while its method-name check stays off; declare one of \
                         the three methods",
                        sig.method_name,
                        endpoint_list(&endpoints)
                    ),
                )
                .signature(key),
            );
            continue;
        };
        let mut problems = signature::static_problems(sig);
        // TF2 writes predict signatures without inputs for stateful tf.functions (a counter's
        // `incr`), and TF Serving serves them: only TF1's static rule objects.
        if method == Endpoint::Predict && sig.inputs.is_empty() && !sig.outputs.is_empty() {
            problems.retain(|p| p != signature::PREDICT_NEEDS_INPUT);
            findings.push(
                Finding::new(
                    Rule::PredictWithoutInputs,
                    "is a predict signature without inputs: TF Serving serves it (TF2 writes \
                     these for stateful tf.functions), but TF1's is_valid_signature rejects it, \
                     so TF1 tools that check signatures may refuse the model; add an input if \
                     such tools must accept it"
                        .to_owned(),
                )
                .signature(key),
            );
        }
        if !problems.is_empty() {
            findings.push(
                Finding::new(
                    Rule::MethodInvalid,
                    format!(
                        "declares {} but TensorFlow's is_valid_signature rejects it ({}); TF \
                         Serving accepts it under {}; {}",
                        sig.method_name,
                        problems.join("; "),
                        endpoint_list(&endpoints),
                        fix_for(method)
                    ),
                )
                .signature(key),
            );
        }
        let extra: Vec<Endpoint> = endpoints
            .iter()
            .copied()
            .filter(|&e| e != method && e != Endpoint::Predict)
            .collect();
        if !extra.is_empty() {
            findings.push(
                Finding::new(
                    Rule::EndpointMismatch,
                    format!(
                        "declares {} but is shaped for {}: TF Serving (method-name check off by \
                         default) accepts it under {}, while TensorFlow's is_valid_signature only \
                         knows it as {}; declare the method you mean to serve (smtool add-classify \
                         writes a classify signature)",
                        sig.method_name,
                        endpoint_list(&extra),
                        endpoint_list(&endpoints),
                        method.name()
                    ),
                )
                .signature(key),
            );
        }
    }
    for req in &ctx.opts.require {
        let sigs = &ctx.meta_graph.signature_def;
        let Some(sig) = sigs
            .get(&req.key)
            .filter(|_| !RESERVED_KEYS.contains(&req.key.as_str()))
        else {
            let available: Vec<String> = sigs
                .keys()
                .filter(|k| !RESERVED_KEYS.contains(&k.as_str()))
                .map(|k| format!("'{k}'"))
                .collect();
            findings.push(Finding::new(
                Rule::RequiredSignature,
                format!(
                    "the deployment requires signature '{}', which the model does not have \
                     (available: {}); export it or change --require-signature",
                    req.key,
                    if available.is_empty() {
                        "none".to_owned()
                    } else {
                        available.join(", ")
                    }
                ),
            ));
            continue;
        };
        let Some(want) = req.endpoint else { continue };
        let problems = signature::serving_problems(&req.key, sig, want);
        if !problems.is_empty() {
            findings.push(
                Finding::new(
                    Rule::RequiredSignature,
                    format!(
                        "the deployment requires :{} on signature '{}', but TF Serving would \
                         refuse it ({}); it serves {}; {}",
                        want.name(),
                        req.key,
                        problems.join("; "),
                        endpoint_list(&signature::endpoints(&req.key, sig)),
                        fix_for(want)
                    ),
                )
                .signature(&req.key),
            );
        }
    }
    findings
}
