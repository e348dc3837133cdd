//! Making a signature added to a TF2 export visible to `tf.saved_model.load` as well.
//!
//! TensorFlow Serving (and the TF1 loader) read `MetaGraphDef.signature_def`, which names tensors
//! of the top-level graph. `tf.saved_model.load` ignores those for TF2 exports: it rebuilds
//! signatures from the object graph, where each signature is a concrete function in the library
//! whose captured inputs are bound to variable objects. So the new top-level nodes are also
//! written as one library function, registered as a concrete function bound to the same
//! variables as the wrapped signature's, and listed in the object graph's signature map.

use std::collections::BTreeMap;

use crate::proto::tensorflow::{
    self as tf, attr_value::Value, saved_object::Kind as ObjectKind,
    structured_value::Kind as SvKind, DataType,
};
use crate::proto_ext::split_tensor_name;

use super::{attr, op_registry, GraphError};

/// Why the signature could not be added to the object graph (the graph signature still works).
#[derive(Debug, thiserror::Error)]
pub enum ObjectGraphError {
    #[error("the model has no object graph signature map")]
    NoSignatureMap,
    #[error("signature '{0}' is not a concrete function of the object graph")]
    NotAFunction(String),
    #[error(
        "node '{node}' reads '{tensor}' from outside the new nodes and is not a function call"
    )]
    UnsupportedCapture { node: String, tensor: String },
    #[error("the new nodes capture {found} tensors but the wrapped signature binds {bound}")]
    CaptureMismatch { found: usize, bound: usize },
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// One output of the new signature.
pub struct Output<'a> {
    pub key: &'a str,
    pub tensor: &'a str,
    pub dtype: DataType,
    pub shape: &'a [i64],
}

/// What to register.
pub struct Signature<'a> {
    /// Keys to list it under in the signature map.
    pub keys: &'a [String],
    /// The signature whose concrete function the new nodes call (its bound variables are reused).
    pub wrapped: &'a str,
    /// With `--make-default`: the key the previous `serving_default` moves to.
    pub rename_default_to: Option<&'a str>,
    /// The DT_STRING `[-1]` placeholder the new nodes read.
    pub input_key: &'a str,
    pub input_placeholder: &'a str,
    /// The new top-level nodes, in the order they were added (the placeholder among them).
    pub nodes: &'a [String],
    pub outputs: &'a [Output<'a>],
    pub function_name: &'a str,
}

fn sv(kind: SvKind) -> tf::StructuredValue {
    tf::StructuredValue { kind: Some(kind) }
}

fn tensor_spec(name: &str, dtype: DataType, shape: &[i64]) -> tf::StructuredValue {
    sv(SvKind::TensorSpecValue(tf::TensorSpecProto {
        name: name.to_owned(),
        shape: Some(attr::shape_proto(shape)),
        dtype: dtype as i32,
    }))
}

/// The tensor of output `index` of `node` inside a function body (`node:arg:index`).
fn body_tensor(node: &tf::NodeDef, index: usize, body_name: &str) -> Result<String, GraphError> {
    let (arg, i) = op_registry::output_arg(node, index)?;
    Ok(format!("{body_name}:{arg}:{i}"))
}

fn body_name(name: &str) -> String {
    name.replace('/', "_")
}

fn type_list(node: &tf::NodeDef, attr: &str) -> Vec<i32> {
    match node.attr.get(attr).and_then(|a| a.value.as_ref()) {
        Some(Value::List(l)) => l.r#type.clone(),
        _ => Vec::new(),
    }
}

/// The new top-level nodes as a function taking the serialized examples and the captured
/// tensors (in order of first use). Returns the function and the captured top-level tensors.
fn to_function(
    graph: &tf::GraphDef,
    sig: &Signature<'_>,
) -> Result<(tf::FunctionDef, Vec<String>), ObjectGraphError> {
    let by_name: BTreeMap<&str, &tf::NodeDef> =
        graph.node.iter().map(|n| (n.name.as_str(), n)).collect();
    let new: BTreeMap<&str, &tf::NodeDef> = sig
        .nodes
        .iter()
        .filter_map(|n| by_name.get(n.as_str()).map(|node| (n.as_str(), *node)))
        .collect();
    let mut captures: Vec<(String, i32)> = Vec::new();
    let mut body = Vec::new();
    for name in sig.nodes {
        if name == sig.input_placeholder {
            continue;
        }
        let Some(node) = new.get(name.as_str()) else {
            continue;
        };
        let mut copy = (*node).clone();
        copy.name = body_name(name);
        let tin = type_list(node, "Tin");
        for (pos, input) in copy.input.iter_mut().enumerate() {
            let control = input.starts_with('^');
            let (src, idx) = split_tensor_name(input);
            if control {
                *input = format!("^{}", body_name(src));
                continue;
            }
            if src == sig.input_placeholder {
                *input = sig.input_key.to_owned();
                continue;
            }
            if let Some(producer) = new.get(src) {
                *input = body_tensor(producer, idx as usize, &body_name(src))?;
                continue;
            }
            // A tensor from outside: only calls can say its type (their Tin attr).
            let Some(dtype) = tin.get(pos).copied() else {
                return Err(ObjectGraphError::UnsupportedCapture {
                    node: name.clone(),
                    tensor: input.clone(),
                });
            };
            let canonical = format!("{src}:{idx}");
            let at = match captures.iter().position(|(t, _)| *t == canonical) {
                Some(at) => at,
                None => {
                    captures.push((canonical, dtype));
                    captures.len() - 1
                }
            };
            *input = format!("capture_{at}");
        }
        body.push(copy);
    }
    let mut ret = BTreeMap::new();
    let mut output_arg = Vec::new();
    for out in sig.outputs {
        let (src, idx) = split_tensor_name(out.tensor);
        let producer = new
            .get(src)
            .ok_or_else(|| GraphError::MissingNode(src.to_owned(), out.tensor.to_owned()))?;
        ret.insert(
            out.key.to_owned(),
            body_tensor(producer, idx as usize, &body_name(src))?,
        );
        output_arg.push(tf::op_def::ArgDef {
            name: out.key.to_owned(),
            r#type: out.dtype as i32,
            ..Default::default()
        });
    }
    let mut input_arg = vec![tf::op_def::ArgDef {
        name: sig.input_key.to_owned(),
        r#type: DataType::DtString as i32,
        ..Default::default()
    }];
    input_arg.extend(
        captures
            .iter()
            .enumerate()
            .map(|(i, (_, dtype))| tf::op_def::ArgDef {
                name: format!("capture_{i}"),
                r#type: *dtype,
                ..Default::default()
            }),
    );
    let mut input_shapes = vec![vec![-1]];
    input_shapes.extend(captures.iter().map(|_| Vec::new()));
    let arg0 = tf::function_def::ArgAttrs {
        attr: BTreeMap::from([
            (
                "_user_specified_name".to_owned(),
                tf::AttrValue {
                    value: Some(Value::S(sig.input_key.as_bytes().to_vec())),
                },
            ),
            ("_output_shapes".to_owned(), attr::shapes(&[vec![-1]])),
        ]),
    };
    let function = tf::FunctionDef {
        signature: Some(tf::OpDef {
            name: sig.function_name.to_owned(),
            input_arg,
            output_arg,
            is_stateful: true,
            ..Default::default()
        }),
        attr: BTreeMap::from([("_input_shapes".to_owned(), attr::shapes(&input_shapes))]),
        arg_attr: BTreeMap::from([(0, arg0)]),
        node_def: body,
        ret,
        ..Default::default()
    };
    Ok((function, captures.into_iter().map(|(t, _)| t).collect()))
}

type ObjectReference = tf::trackable_object_graph::trackable_object::ObjectReference;

fn child_id(object: &tf::SavedObject, name: &str) -> Option<usize> {
    object
        .children
        .iter()
        .find(|c| c.local_name == name)
        .map(|c| c.node_id as usize)
}

/// `kwonlyargs` of a copied FunctionSpec's FullArgSpec, set to `keys`.
fn set_keyword_args(spec: &mut tf::FunctionSpec, keys: &[&str]) {
    let Some(SvKind::NamedTupleValue(args)) =
        spec.fullargspec.as_mut().and_then(|f| f.kind.as_mut())
    else {
        return;
    };
    for pair in &mut args.values {
        if pair.key == "kwonlyargs" {
            pair.value = Some(sv(SvKind::ListValue(tf::ListValue {
                values: keys
                    .iter()
                    .map(|k| sv(SvKind::StringValue((*k).to_owned())))
                    .collect(),
            })));
        }
    }
}

/// Adds the new signature to the object graph of `meta` (a TF2 export): a library function made
/// of the new nodes, a concrete function bound like the wrapped signature's, and signature-map
/// entries under every key. Nothing is changed when an error is returned.
pub fn add_signature(
    meta: &mut tf::MetaGraphDef,
    sig: &Signature<'_>,
) -> Result<(), ObjectGraphError> {
    let Prepared {
        map_id,
        function,
        concrete,
        bare,
    } = prepare(meta, sig)?;
    meta.graph_def
        .get_or_insert_with(Default::default)
        .library
        .get_or_insert_with(Default::default)
        .function
        .push(function);
    let Some(objects) = meta.object_graph_def.as_mut() else {
        return Err(ObjectGraphError::NoSignatureMap);
    };
    objects
        .concrete_functions
        .insert(sig.function_name.to_owned(), concrete);
    let new_id = objects.nodes.len() as i32;
    objects.nodes.push(bare);
    let map = &mut objects.nodes[map_id];
    if let Some(to) = sig.rename_default_to {
        map.children.retain(|c| c.local_name != to);
        for c in &mut map.children {
            if c.local_name == crate::signature::DEFAULT_SIGNATURE_KEY {
                c.local_name = to.to_owned();
            }
        }
    }
    for key in sig.keys {
        map.children.retain(|c| &c.local_name != key);
        map.children.push(ObjectReference {
            node_id: new_id,
            local_name: key.clone(),
        });
    }
    Ok(())
}

/// Everything `add_signature` adds, worked out without changing the meta graph.
struct Prepared {
    /// Node id of the object graph's signature map.
    map_id: usize,
    function: tf::FunctionDef,
    concrete: tf::SavedConcreteFunction,
    /// The object listing the concrete function in the signature map.
    bare: tf::SavedObject,
}

fn prepare(meta: &tf::MetaGraphDef, sig: &Signature<'_>) -> Result<Prepared, ObjectGraphError> {
    let no_graph = tf::GraphDef::default();
    let graph = meta.graph_def.as_ref().unwrap_or(&no_graph);
    let objects = meta
        .object_graph_def
        .as_ref()
        .ok_or(ObjectGraphError::NoSignatureMap)?;
    let map_id = objects
        .nodes
        .first()
        .and_then(|root| child_id(root, "signatures"))
        .filter(|id| {
            matches!(
                objects.nodes.get(*id).and_then(|n| n.kind.as_ref()),
                Some(ObjectKind::UserObject(u)) if u.identifier == "signature_map"
            )
        })
        .ok_or(ObjectGraphError::NoSignatureMap)?;
    let wrapped = child_id(&objects.nodes[map_id], sig.wrapped)
        .and_then(|id| objects.nodes.get(id))
        .and_then(|n| match n.kind.as_ref() {
            Some(ObjectKind::BareConcreteFunction(f)) => Some(f),
            _ => None,
        })
        .ok_or_else(|| ObjectGraphError::NotAFunction(sig.wrapped.to_owned()))?;
    let wrapped_concrete = objects
        .concrete_functions
        .get(&wrapped.concrete_function_name)
        .ok_or_else(|| ObjectGraphError::NotAFunction(sig.wrapped.to_owned()))?;

    let (mut function, captures) = to_function(graph, sig)?;
    if captures.len() != wrapped_concrete.bound_inputs.len() {
        return Err(ObjectGraphError::CaptureMismatch {
            found: captures.len(),
            bound: wrapped_concrete.bound_inputs.len(),
        });
    }
    // The wrapped function's captured arguments say what the variables hold (handle data).
    let wrapped_def = graph
        .library
        .iter()
        .flat_map(|l| l.function.iter())
        .find(|f| {
            f.signature
                .as_ref()
                .is_some_and(|s| s.name == wrapped.concrete_function_name)
        });
    if let (Some(ours), Some(theirs)) = (
        function.signature.as_mut(),
        wrapped_def.and_then(|f| f.signature.as_ref()),
    ) {
        let skip = theirs.input_arg.len().saturating_sub(captures.len());
        for (mine, their) in ours
            .input_arg
            .iter_mut()
            .skip(1)
            .zip(&theirs.input_arg[skip..])
        {
            if mine.r#type == their.r#type {
                mine.handle_data = their.handle_data.clone();
            }
        }
    }

    let concrete = tf::SavedConcreteFunction {
        bound_inputs: wrapped_concrete.bound_inputs.clone(),
        canonicalized_input_signature: Some(sv(SvKind::TupleValue(tf::TupleValue {
            values: vec![
                sv(SvKind::TupleValue(tf::TupleValue::default())),
                sv(SvKind::DictValue(tf::DictValue {
                    fields: BTreeMap::from([(
                        sig.input_key.to_owned(),
                        tensor_spec(sig.input_key, DataType::DtString, &[-1]),
                    )]),
                })),
            ],
        }))),
        output_signature: Some(sv(SvKind::DictValue(tf::DictValue {
            fields: sig
                .outputs
                .iter()
                .map(|o| (o.key.to_owned(), tensor_spec(o.key, o.dtype, o.shape)))
                .collect(),
        }))),
    };
    let mut spec = wrapped.function_spec.clone();
    if let Some(spec) = spec.as_mut() {
        set_keyword_args(spec, &[sig.input_key]);
    }
    let bare = tf::SavedObject {
        kind: Some(ObjectKind::BareConcreteFunction(
            tf::SavedBareConcreteFunction {
                concrete_function_name: sig.function_name.to_owned(),
                argument_keywords: vec![sig.input_key.to_owned()],
                allowed_positional_arguments: 1,
                function_spec: spec,
            },
        )),
        ..Default::default()
    };

    Ok(Prepared {
        map_id,
        function,
        concrete,
        bare,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::raw_node as node;

    /// Function `f` for `serving_default` of `nodes`, fed by placeholder `c/inputs`.
    fn signature<'a>(nodes: &'a [String], outputs: &'a [Output<'a>]) -> Signature<'a> {
        Signature {
            keys: &[],
            wrapped: "serving_default",
            rename_default_to: None,
            input_key: "inputs",
            input_placeholder: "c/inputs",
            nodes,
            outputs,
            function_name: "f",
        }
    }

    #[test]
    fn new_nodes_become_a_function_with_captures() {
        let mut call = node(
            "c/call",
            "StatefulPartitionedCall",
            &["c/cast", "var", "var:0"],
        );
        call.attr.insert(
            "Tin".into(),
            attr::dtypes(&[
                DataType::DtFloat,
                DataType::DtResource,
                DataType::DtResource,
            ]),
        );
        call.attr
            .insert("Tout".into(), attr::dtypes(&[DataType::DtFloat]));
        let mut cast = node("c/cast", "Cast", &["c/inputs"]);
        cast.attr
            .insert("SrcT".into(), attr::dtype(DataType::DtString));
        let graph = tf::GraphDef {
            node: vec![
                node("var", "VarHandleOp", &[]),
                node("c/inputs", "Placeholder", &[]),
                cast,
                call,
                node("c/scores", "Identity", &["c/call:0", "^c/cast"]),
            ],
            ..Default::default()
        };
        let names: Vec<String> = ["c/inputs", "c/cast", "c/call", "c/scores"]
            .map(String::from)
            .to_vec();
        let outputs = [Output {
            key: "scores",
            tensor: "c/scores:0",
            dtype: DataType::DtFloat,
            shape: &[-1, 3],
        }];
        let sig = signature(&names, &outputs);
        let (f, captures) = to_function(&graph, &sig).unwrap();
        // `var` and `var:0` are one tensor, captured once.
        assert_eq!(captures, ["var:0"]);
        let body: BTreeMap<&str, &tf::NodeDef> =
            f.node_def.iter().map(|n| (n.name.as_str(), n)).collect();
        assert_eq!(body["c_cast"].input, ["inputs"]);
        assert_eq!(
            body["c_call"].input,
            ["c_cast:y:0", "capture_0", "capture_0"]
        );
        assert_eq!(body["c_scores"].input, ["c_call:output:0", "^c_cast"]);
        assert_eq!(f.ret["scores"], "c_scores:output:0");
        let args: Vec<(&str, i32)> = f
            .signature
            .as_ref()
            .unwrap()
            .input_arg
            .iter()
            .map(|a| (a.name.as_str(), a.r#type))
            .collect();
        assert_eq!(
            args,
            [
                ("inputs", DataType::DtString as i32),
                ("capture_0", DataType::DtResource as i32)
            ]
        );
    }

    #[test]
    fn captures_outside_calls_are_refused() {
        let graph = tf::GraphDef {
            node: vec![
                node("w", "VariableV2", &[]),
                node("c/inputs", "Placeholder", &[]),
                node("c/mul", "Mul", &["c/inputs", "w"]),
            ],
            ..Default::default()
        };
        let names: Vec<String> = ["c/inputs", "c/mul"].map(String::from).to_vec();
        let sig = signature(&names, &[]);
        let err = to_function(&graph, &sig).unwrap_err();
        assert!(
            matches!(err, ObjectGraphError::UnsupportedCapture { .. }),
            "{err}"
        );
    }
}
