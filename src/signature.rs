//! Signature rules: TensorFlow's static `is_valid_signature` and the looser checks TensorFlow
//! Serving applies when a request arrives (its method-name check is off by default).

use crate::proto::tensorflow::{self as tf, DataType};
use crate::proto_ext::{dims, dtype_name};

pub const DEFAULT_SIGNATURE_KEY: &str = "serving_default";
pub const CLASSIFY_METHOD: &str = "tensorflow/serving/classify";
pub const REGRESS_METHOD: &str = "tensorflow/serving/regress";
pub const PREDICT_METHOD: &str = "tensorflow/serving/predict";
pub const CLASSIFY_INPUTS: &str = "inputs";
pub const CLASSIFY_CLASSES: &str = "classes";
pub const CLASSIFY_SCORES: &str = "scores";
pub const REGRESS_INPUTS: &str = "inputs";
pub const REGRESS_OUTPUTS: &str = "outputs";
/// Keys TensorFlow reserves for the init and train ops; they are not servable signatures.
pub const RESERVED_KEYS: [&str; 2] = [
    crate::savedmodel::INIT_OP_KEY,
    crate::savedmodel::TRAIN_OP_KEY,
];

/// A TF Serving inference endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    Classify,
    Regress,
    Predict,
}

impl Endpoint {
    pub const ALL: [Endpoint; 3] = [Endpoint::Classify, Endpoint::Regress, Endpoint::Predict];

    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Classify => "classify",
            Endpoint::Regress => "regress",
            Endpoint::Predict => "predict",
        }
    }

    pub fn method_name(self) -> &'static str {
        match self {
            Endpoint::Classify => CLASSIFY_METHOD,
            Endpoint::Regress => REGRESS_METHOD,
            Endpoint::Predict => PREDICT_METHOD,
        }
    }

    pub fn from_method_name(method: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.method_name() == method)
    }
}

impl std::str::FromStr for Endpoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| format!("unknown method '{s}' (expected classify, regress or predict)"))
    }
}

fn dtype_is(info: &tf::TensorInfo, want: DataType) -> bool {
    info.dtype == want as i32
}

fn single_string_input(sig: &tf::SignatureDef, key: &str, problems: &mut Vec<String>) {
    if sig.inputs.len() != 1 {
        problems.push(format!(
            "needs exactly one input, found {}",
            sig.inputs.len()
        ));
    }
    match sig.inputs.get(key) {
        None => problems.push(format!("has no input named '{key}'")),
        Some(info) if !dtype_is(info, DataType::DtString) => problems.push(format!(
            "input '{key}' is {}, but it is fed serialized tf.Examples (DT_STRING)",
            dtype_name(info.dtype)
        )),
        Some(_) => {}
    }
}

/// Why TF Serving would refuse a request to `endpoint` on this signature; empty when it accepts.
/// Follows TF Serving's request-time checks (classifier.cc, regressor.cc), with the outcome of the
/// run predicted from the declared dtypes and shapes.
pub fn serving_problems(key: &str, sig: &tf::SignatureDef, endpoint: Endpoint) -> Vec<String> {
    let mut problems = Vec::new();
    if RESERVED_KEYS.contains(&key) {
        problems.push(format!("'{key}' is reserved for TensorFlow's own use"));
        return problems;
    }
    match endpoint {
        Endpoint::Predict => {}
        Endpoint::Classify => {
            single_string_input(sig, CLASSIFY_INPUTS, &mut problems);
            let n = sig.outputs.len();
            if !(1..=2).contains(&n) {
                problems.push(format!("needs one or two outputs, found {n}"));
            }
            let classes = sig.outputs.get(CLASSIFY_CLASSES);
            let scores = sig.outputs.get(CLASSIFY_SCORES);
            if classes.is_none() && scores.is_none() {
                problems.push("has neither a 'classes' nor a 'scores' output".into());
            }
            for (name, info, want) in [
                (CLASSIFY_CLASSES, classes, DataType::DtString),
                (CLASSIFY_SCORES, scores, DataType::DtFloat),
            ] {
                let Some(info) = info else { continue };
                if !dtype_is(info, want) {
                    problems.push(format!(
                        "output '{name}' is {}, must be {}",
                        dtype_name(info.dtype),
                        want.as_str_name()
                    ));
                }
                if let Some(d) = dims(info.tensor_shape.as_ref()) {
                    if d.len() != 2 {
                        problems.push(format!(
                            "output '{name}' has rank {}, must be rank 2 [batch, classes]",
                            d.len()
                        ));
                    }
                }
            }
        }
        Endpoint::Regress => {
            single_string_input(sig, REGRESS_INPUTS, &mut problems);
            if sig.outputs.len() != 1 {
                problems.push(format!(
                    "needs exactly one output, found {}",
                    sig.outputs.len()
                ));
            }
            match sig.outputs.get(REGRESS_OUTPUTS) {
                None => problems.push(format!("has no output named '{REGRESS_OUTPUTS}'")),
                Some(info) => {
                    if !dtype_is(info, DataType::DtFloat) {
                        problems.push(format!(
                            "output '{REGRESS_OUTPUTS}' is {}, must be DT_FLOAT",
                            dtype_name(info.dtype)
                        ));
                    }
                    if let Some(d) = dims(info.tensor_shape.as_ref()) {
                        let ok = d.len() == 1 || (d.len() == 2 && matches!(d[1], 1 | -1));
                        if !ok {
                            problems.push(format!(
                                "output '{REGRESS_OUTPUTS}' must be shaped [n] or [n, 1], is {}",
                                crate::proto_ext::shape_text(info.tensor_shape.as_ref())
                            ));
                        }
                    }
                }
            }
        }
    }
    problems
}

/// The endpoints TF Serving accepts this signature under.
pub fn endpoints(key: &str, sig: &tf::SignatureDef) -> Vec<Endpoint> {
    Endpoint::ALL
        .into_iter()
        .filter(|&e| serving_problems(key, sig, e).is_empty())
        .collect()
}

/// Why a body with `examples` has no one endpoint on a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExamplesEndpoint {
    /// It serves both :classify and :regress.
    Both,
    /// It serves neither; why not :classify.
    Neither(Vec<String>),
}

/// The endpoint a request of `tf.Example`s calls on signature `key`: :classify or :regress,
/// whichever of the two TF Serving would accept.
pub fn examples_endpoint(key: &str, sig: &tf::SignatureDef) -> Result<Endpoint, ExamplesEndpoint> {
    let served = endpoints(key, sig);
    match (
        served.contains(&Endpoint::Classify),
        served.contains(&Endpoint::Regress),
    ) {
        (true, false) => Ok(Endpoint::Classify),
        (false, true) => Ok(Endpoint::Regress),
        (true, true) => Err(ExamplesEndpoint::Both),
        (false, false) => Err(ExamplesEndpoint::Neither(serving_problems(
            key,
            sig,
            Endpoint::Classify,
        ))),
    }
}

/// The problem `static_problems` names for a predict signature without inputs.
pub const PREDICT_NEEDS_INPUT: &str = "a predict signature needs at least one input";

/// Why TensorFlow's static rule (`signature_def_utils.is_valid_signature`) rejects the signature
/// for the method it declares; empty when valid. An unknown method name is itself a problem.
pub fn static_problems(sig: &tf::SignatureDef) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(method) = Endpoint::from_method_name(&sig.method_name) else {
        problems.push(format!(
            "method name '{}' is none of {CLASSIFY_METHOD}, {REGRESS_METHOD}, {PREDICT_METHOD}",
            sig.method_name
        ));
        return problems;
    };
    let only_key = |map: &std::collections::BTreeMap<String, tf::TensorInfo>, key: &str| {
        map.len() == 1 && map.contains_key(key)
    };
    match method {
        Endpoint::Predict => {
            if sig.inputs.is_empty() {
                problems.push(PREDICT_NEEDS_INPUT.into());
            }
            if sig.outputs.is_empty() {
                problems.push("a predict signature needs at least one output".into());
            }
            // TensorFlow's predict rule asks nothing more: sparse and composite tensors are
            // fine (checked against is_valid_signature by python/check_validate.py).
        }
        Endpoint::Classify => {
            if !only_key(&sig.inputs, CLASSIFY_INPUTS) {
                problems.push("a classify signature needs exactly one input, 'inputs'".into());
            } else if !dtype_is(&sig.inputs[CLASSIFY_INPUTS], DataType::DtString) {
                problems.push(format!(
                    "classify input 'inputs' is {}, must be DT_STRING (serialized tf.Example)",
                    dtype_name(sig.inputs[CLASSIFY_INPUTS].dtype)
                ));
            }
            if sig.outputs.is_empty() {
                problems.push("a classify signature needs a 'classes' or 'scores' output".into());
            }
            for (k, info) in &sig.outputs {
                let want = match k.as_str() {
                    CLASSIFY_CLASSES => DataType::DtString,
                    CLASSIFY_SCORES => DataType::DtFloat,
                    _ => {
                        problems.push(format!(
                            "classify output '{k}' is not allowed (only 'classes' and 'scores')"
                        ));
                        continue;
                    }
                };
                if !dtype_is(info, want) {
                    problems.push(format!(
                        "classify output '{k}' is {}, must be {}",
                        dtype_name(info.dtype),
                        want.as_str_name()
                    ));
                }
            }
        }
        Endpoint::Regress => {
            if !only_key(&sig.inputs, REGRESS_INPUTS) {
                problems.push("a regress signature needs exactly one input, 'inputs'".into());
            } else if !dtype_is(&sig.inputs[REGRESS_INPUTS], DataType::DtString) {
                problems.push(format!(
                    "regress input 'inputs' is {}, must be DT_STRING (serialized tf.Example)",
                    dtype_name(sig.inputs[REGRESS_INPUTS].dtype)
                ));
            }
            if !only_key(&sig.outputs, REGRESS_OUTPUTS) {
                problems.push("a regress signature needs exactly one output, 'outputs'".into());
            } else if !dtype_is(&sig.outputs[REGRESS_OUTPUTS], DataType::DtFloat) {
                problems.push(format!(
                    "regress output 'outputs' is {}, must be DT_FLOAT",
                    dtype_name(sig.outputs[REGRESS_OUTPUTS].dtype)
                ));
            }
        }
    }
    problems
}

/// TensorFlow's `is_valid_signature`.
pub fn is_valid_signature(sig: &tf::SignatureDef) -> bool {
    static_problems(sig).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tf::tensor_info::Encoding;

    fn info(name: &str, dtype: DataType, shape: Option<&[i64]>) -> tf::TensorInfo {
        tf::TensorInfo {
            encoding: Some(Encoding::Name(name.into())),
            dtype: dtype as i32,
            tensor_shape: Some(tf::TensorShapeProto {
                dim: shape
                    .unwrap_or(&[])
                    .iter()
                    .map(|&size| tf::tensor_shape_proto::Dim {
                        size,
                        name: String::new(),
                    })
                    .collect(),
                unknown_rank: shape.is_none(),
            }),
        }
    }

    fn sig(
        method: &str,
        inputs: &[(&str, DataType, Option<&[i64]>)],
        outputs: &[(&str, DataType, Option<&[i64]>)],
    ) -> tf::SignatureDef {
        let map = |v: &[(&str, DataType, Option<&[i64]>)]| {
            v.iter()
                .map(|(k, d, s)| (k.to_string(), info(&format!("{k}:0"), *d, *s)))
                .collect()
        };
        tf::SignatureDef {
            inputs: map(inputs),
            outputs: map(outputs),
            method_name: method.into(),
            defaults: Default::default(),
        }
    }

    use DataType::{DtFloat as F, DtString as S};
    const N: Option<&[i64]> = Some(&[-1]);
    const NK: Option<&[i64]> = Some(&[-1, 3]);

    #[test]
    fn endpoint_table() {
        let cases = [
            // A TF2 export: predict method but classify-shaped, so TF Serving serves :classify too.
            (
                sig(PREDICT_METHOD, &[("inputs", S, N)], &[("scores", F, NK)]),
                vec![Endpoint::Classify, Endpoint::Predict],
                true,
            ),
            (
                sig(
                    CLASSIFY_METHOD,
                    &[("inputs", S, N)],
                    &[("classes", S, NK), ("scores", F, NK)],
                ),
                vec![Endpoint::Classify, Endpoint::Predict],
                true,
            ),
            (
                sig(CLASSIFY_METHOD, &[("inputs", F, N)], &[("scores", F, NK)]),
                vec![Endpoint::Predict],
                false,
            ),
            (
                sig(
                    REGRESS_METHOD,
                    &[("inputs", S, N)],
                    &[("outputs", F, Some(&[-1, 1]))],
                ),
                vec![Endpoint::Regress, Endpoint::Predict],
                true,
            ),
            (
                sig(
                    REGRESS_METHOD,
                    &[("inputs", S, N)],
                    &[("outputs", F, N), ("extra", F, N)],
                ),
                vec![Endpoint::Predict],
                false,
            ),
            (
                sig(
                    PREDICT_METHOD,
                    &[("x", F, Some(&[-1, 28, 28, 1]))],
                    &[("y", F, NK)],
                ),
                vec![Endpoint::Predict],
                true,
            ),
            (
                sig(CLASSIFY_METHOD, &[("inputs", S, N)], &[("scores", F, N)]),
                vec![Endpoint::Predict],
                true,
            ),
            (
                sig("custom/method", &[("x", F, N)], &[("y", F, N)]),
                vec![Endpoint::Predict],
                false,
            ),
        ];
        for (i, (s, want, valid)) in cases.iter().enumerate() {
            assert_eq!(&endpoints("k", s), want, "case {i}");
            assert_eq!(
                is_valid_signature(s),
                *valid,
                "case {i}: {:?}",
                static_problems(s)
            );
        }
    }

    #[test]
    fn reserved_keys_serve_nothing() {
        let s = sig(PREDICT_METHOD, &[("x", F, N)], &[("y", F, N)]);
        assert!(endpoints(crate::savedmodel::INIT_OP_KEY, &s).is_empty());
    }
}
