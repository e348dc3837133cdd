//! The classify head `add-classify` puts on a graph: serialized `tf.Example`s parsed into the
//! wrapped signature's inputs (images decoded by [`super::image`]), a clone of the computation
//! behind its output, optionally a Softmax, the top k scores and their labels, and the new
//! signature, in `signature_def` and, for TF2 exports, in the object graph. What the head is made
//! of is decided and checked by the command against the model; this module only builds it.

use std::collections::BTreeMap;
use std::str::FromStr;

use super::image::{self, Pixels};
use super::{attr, clone, node, object_graph, op_registry, GraphEditor, GraphError};
use crate::proto::tensorflow::{self as tf, tensor_info::Encoding, DataType};
use crate::signature::{
    CLASSIFY_CLASSES, CLASSIFY_INPUTS, CLASSIFY_METHOD, CLASSIFY_SCORES, DEFAULT_SIGNATURE_KEY,
};

pub use super::image::ImageScale;

/// How a `tf.Example` feature becomes a model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatureKind {
    /// `float_list`, for floating-point inputs.
    Float,
    /// `int64_list`, for integer and boolean inputs.
    Int64,
    /// `bytes_list`, for string inputs.
    Bytes,
    /// One encoded JPEG/PNG/GIF/BMP per example in a `bytes_list`, decoded, resized and scaled to
    /// the input's `[height, width, channels]`.
    Image,
}

impl FeatureKind {
    const ALL: [FeatureKind; 4] = [Self::Float, Self::Int64, Self::Bytes, Self::Image];

    pub fn name(self) -> &'static str {
        match self {
            Self::Float => "float",
            Self::Int64 => "int64",
            Self::Bytes => "bytes",
            Self::Image => "image",
        }
    }

    /// The dtype `ParseExampleV2` produces for this kind.
    pub fn parsed_dtype(self) -> DataType {
        match self {
            Self::Float => DataType::DtFloat,
            Self::Int64 => DataType::DtInt64,
            Self::Bytes | Self::Image => DataType::DtString,
        }
    }

    /// Input dtypes this kind can feed (through a Cast where they differ from the parsed one).
    pub fn feeds(self) -> &'static [DataType] {
        use DataType as D;
        match self {
            Self::Float => &[D::DtFloat, D::DtDouble, D::DtHalf, D::DtBfloat16],
            Self::Int64 => &[
                D::DtInt64,
                D::DtInt32,
                D::DtInt16,
                D::DtInt8,
                D::DtUint8,
                D::DtUint16,
                D::DtUint32,
                D::DtUint64,
                D::DtBool,
            ],
            Self::Bytes => &[D::DtString],
            Self::Image => &[D::DtFloat, D::DtUint8],
        }
    }

    /// The kind used when `--feature` does not name one.
    pub fn default_for(dtype: i32) -> Option<Self> {
        [Self::Float, Self::Int64, Self::Bytes]
            .into_iter()
            .find(|k| k.feeds().iter().any(|d| *d as i32 == dtype))
    }
}

impl FromStr for FeatureKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                format!("unknown feature kind '{s}' (expected float, int64, bytes or image)")
            })
    }
}

/// One input of the wrapped signature with everything needed to feed it.
#[derive(Debug, Clone)]
pub struct Feed {
    /// The signature's input key.
    pub input: String,
    /// The tensor it names.
    pub tensor: String,
    /// The `tf.Example` feature it is parsed from.
    pub feature: String,
    pub kind: FeatureKind,
    pub dtype: DataType,
    /// Shape of one example (the input's shape without the batch dimension).
    pub example_shape: Vec<i64>,
}

/// What the head is made of, checked against the model.
#[derive(Debug, Clone)]
pub struct ClassifyHead {
    /// The new signature's key; the new nodes live in a scope named after it.
    pub key: String,
    /// With `Some(old)`, the new signature also becomes `serving_default`, and the previous
    /// default (if any) moves to the key `old`.
    pub make_default: Option<String>,
    /// The signature whose computation the head wraps.
    pub wrapped_signature: String,
    /// Its output holding the class scores, and the output's dtype.
    pub output_tensor: String,
    pub output_dtype: DataType,
    /// One per class, in class-index order.
    pub labels: Vec<String>,
    pub top_k: usize,
    pub feeds: Vec<Feed>,
    pub image_scale: ImageScale,
    /// Add a Softmax after the output (it holds logits).
    pub apply_softmax: bool,
}

impl ClassifyHead {
    /// The keys the new signature goes under.
    pub fn keys(&self) -> Vec<String> {
        let mut keys = vec![self.key.clone()];
        if self.make_default.is_some() && self.key != DEFAULT_SIGNATURE_KEY {
            keys.push(DEFAULT_SIGNATURE_KEY.to_owned());
        }
        keys
    }
}

/// What building the head did.
#[derive(Debug, Clone)]
pub struct Built {
    /// How many nodes of the wrapped computation were cloned.
    pub cloned_nodes: usize,
    /// For TF2 exports, whether `tf.saved_model.load` will list the signature (or why not);
    /// `None` for TF1 models.
    pub object_graph: Option<Result<(), String>>,
}

/// Builds `head` into `meta`: the new nodes, the functions they call, the signature under
/// [`ClassifyHead::keys`], its object-graph entry for TF2 exports, and the OpDefs of the new ops
/// in the `stripped_op_list`.
pub fn add_classify_head(
    meta: &mut tf::MetaGraphDef,
    head: &ClassifyHead,
) -> Result<Built, GraphError> {
    let graph = meta.graph_def.get_or_insert_with(Default::default);
    let mut ed = GraphEditor::new(graph, &head.key);

    // Serialized tf.Examples in, parsed into one dense tensor per input.
    let name = ed.name(CLASSIFY_INPUTS);
    let examples = ed.add(
        node(name, "Placeholder")
            .attr("dtype", attr::dtype(DataType::DtString))
            .attr("shape", attr::shape(&[-1])),
    )?;
    let no_strings: [&str; 0] = [];
    let names = ed.constant("ParseExample/names", attr::string_vector(&no_strings))?;
    let sparse_keys = ed.constant("ParseExample/sparse_keys", attr::string_vector(&no_strings))?;
    let ragged_keys = ed.constant("ParseExample/ragged_keys", attr::string_vector(&no_strings))?;
    let feature_names: Vec<&str> = head.feeds.iter().map(|f| f.feature.as_str()).collect();
    let dense_keys = ed.constant(
        "ParseExample/dense_keys",
        attr::string_vector(&feature_names),
    )?;
    // No defaults: a missing feature is an error, as in TensorFlow Serving's own parsing.
    let mut defaults = Vec::new();
    for feed in &head.feeds {
        let local = format!("ParseExample/no_default_{}", feed.feature);
        defaults.push(ed.constant(&local, attr::empty(feed.kind.parsed_dtype()))?);
    }
    let parsed_shapes: Vec<Vec<i64>> = head
        .feeds
        .iter()
        .map(|f| match f.kind {
            FeatureKind::Image => Vec::new(),
            _ => f.example_shape.clone(),
        })
        .collect();
    let parsed_types: Vec<DataType> = head.feeds.iter().map(|f| f.kind.parsed_dtype()).collect();
    let name = ed.name("ParseExample/ParseExampleV2");
    let mut parse = node(name, "ParseExampleV2")
        .input(&examples)
        .input(&names)
        .input(&sparse_keys)
        .input(&dense_keys)
        .input(&ragged_keys);
    for d in &defaults {
        parse = parse.input(d);
    }
    let parse = ed.add(
        parse
            .attr("Tdense", attr::dtypes(&parsed_types))
            .attr("num_sparse", attr::int(0))
            .attr("sparse_types", attr::dtypes(&[]))
            .attr("ragged_value_types", attr::dtypes(&[]))
            .attr("ragged_split_types", attr::dtypes(&[]))
            .attr("dense_shapes", attr::shapes(&parsed_shapes)),
    )?;

    let mut replace = BTreeMap::new();
    for (i, feed) in head.feeds.iter().enumerate() {
        // With no sparse features the dense values are the first outputs.
        let parsed = format!("{parse}:{i}");
        let fed = match feed.kind {
            FeatureKind::Image => {
                let [h, w, c] = feed.example_shape[..] else {
                    return Err(GraphError::BadNode {
                        node: feed.input.clone(),
                        op: "Placeholder".into(),
                        detail: "image input is not (batch, height, width, channels)".into(),
                    });
                };
                let pixels = match feed.dtype {
                    DataType::DtUint8 => Pixels::Uint8,
                    _ => Pixels::Float(head.image_scale),
                };
                image::decode_images(&mut ed, &feed.input, &parsed, [h, w, c], pixels)?
            }
            kind if kind.parsed_dtype() != feed.dtype => ed.cast(
                &format!("cast_{}", feed.input),
                &parsed,
                kind.parsed_dtype(),
                feed.dtype,
            )?,
            _ => parsed,
        };
        replace.insert(feed.tensor.clone(), fed);
    }

    // The wrapped computation, cloned onto the parsed features.
    let cloned = clone::clone_between(&mut ed, &replace, &head.output_tensor)?;
    let mut scores = cloned.output.clone();
    if head.output_dtype != DataType::DtFloat {
        scores = ed.cast("cast_scores", &scores, head.output_dtype, DataType::DtFloat)?;
    }
    if head.apply_softmax {
        let name = ed.name("Softmax");
        scores = ed.add(
            node(name, "Softmax")
                .input(&scores)
                .attr("T", attr::dtype(DataType::DtFloat)),
        )?;
    }

    // Sorted scores and the label of each.
    let k = ed.constant("TopKV2/k", attr::int32_tensor(&[head.top_k as i32], &[]))?;
    let name = ed.name("TopKV2");
    let top = ed.add(
        node(name, "TopKV2")
            .input(&scores)
            .input(&k)
            .attr("T", attr::dtype(DataType::DtFloat))
            .attr("sorted", attr::boolean(true)),
    )?;
    let labels = ed.constant("labels", attr::string_vector(&head.labels))?;
    let axis = ed.constant("GatherV2/axis", attr::int32_tensor(&[0], &[]))?;
    let name = ed.name("GatherV2");
    let gathered = ed.add(
        node(name, "GatherV2")
            .input(&labels)
            .input(format!("{top}:1"))
            .input(&axis)
            .attr("Tparams", attr::dtype(DataType::DtString))
            .attr("Tindices", attr::dtype(DataType::DtInt32))
            .attr("Taxis", attr::dtype(DataType::DtInt32)),
    )?;
    let name = ed.name(CLASSIFY_CLASSES);
    let classes = ed.add(
        node(name, "Identity")
            .input(&gathered)
            .attr("T", attr::dtype(DataType::DtString)),
    )?;
    let name = ed.name(CLASSIFY_SCORES);
    let top_scores = ed.add(
        node(name, "Identity")
            .input(format!("{top}:0"))
            .attr("T", attr::dtype(DataType::DtFloat)),
    )?;
    let added_ops: Vec<String> = ed.added_ops().map(str::to_owned).collect();
    let added_nodes: Vec<String> = ed.added_nodes().to_vec();
    let function_name = ed.function_name(&format!("__inference_signature_wrapper_{}", ed.scope()));

    let k = head.top_k as i64;
    let sig = tf::SignatureDef {
        inputs: BTreeMap::from([(
            CLASSIFY_INPUTS.to_owned(),
            tensor_info(&format!("{examples}:0"), DataType::DtString, &[-1]),
        )]),
        outputs: BTreeMap::from([
            (
                CLASSIFY_CLASSES.to_owned(),
                tensor_info(&format!("{classes}:0"), DataType::DtString, &[-1, k]),
            ),
            (
                CLASSIFY_SCORES.to_owned(),
                tensor_info(&format!("{top_scores}:0"), DataType::DtFloat, &[-1, k]),
            ),
        ]),
        method_name: CLASSIFY_METHOD.to_owned(),
        defaults: BTreeMap::new(),
    };
    if let Some(rename_default_to) = &head.make_default {
        if let Some(old) = meta.signature_def.remove(DEFAULT_SIGNATURE_KEY) {
            meta.signature_def.insert(rename_default_to.clone(), old);
        }
        meta.signature_def
            .insert(DEFAULT_SIGNATURE_KEY.to_owned(), sig.clone());
    }
    meta.signature_def.insert(head.key.clone(), sig);

    // TF2 exports: tf.saved_model.load reads signatures from the object graph instead.
    let loader = if meta.object_graph_def.is_some() {
        let keys = head.keys();
        let classes_tensor = format!("{classes}:0");
        let scores_tensor = format!("{top_scores}:0");
        let shape = [-1, k];
        let outputs = [
            object_graph::Output {
                key: CLASSIFY_CLASSES,
                tensor: &classes_tensor,
                dtype: DataType::DtString,
                shape: &shape,
            },
            object_graph::Output {
                key: CLASSIFY_SCORES,
                tensor: &scores_tensor,
                dtype: DataType::DtFloat,
                shape: &shape,
            },
        ];
        let target = object_graph::Signature {
            keys: &keys,
            wrapped: &head.wrapped_signature,
            rename_default_to: head.make_default.as_deref(),
            input_key: CLASSIFY_INPUTS,
            input_placeholder: &examples,
            nodes: &added_nodes,
            outputs: &outputs,
            function_name: &function_name,
        };
        Some(match object_graph::add_signature(meta, &target) {
            Ok(()) => Ok(()),
            Err(e) => Err(e.to_string()),
        })
    } else {
        None
    };
    op_registry::extend_stripped_op_list(meta, added_ops.iter().map(String::as_str));
    Ok(Built {
        cloned_nodes: cloned.nodes.len(),
        object_graph: loader,
    })
}

fn tensor_info(name: &str, dtype: DataType, shape: &[i64]) -> tf::TensorInfo {
    tf::TensorInfo {
        dtype: dtype as i32,
        tensor_shape: Some(attr::shape_proto(shape)),
        encoding: Some(Encoding::Name(name.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_kinds_feed_their_dtypes() {
        use DataType as D;
        let cases = [
            (D::DtFloat, Some(FeatureKind::Float)),
            (D::DtBfloat16, Some(FeatureKind::Float)),
            (D::DtInt32, Some(FeatureKind::Int64)),
            (D::DtBool, Some(FeatureKind::Int64)),
            (D::DtString, Some(FeatureKind::Bytes)),
            (D::DtComplex64, None),
        ];
        for (dtype, kind) in cases {
            assert_eq!(FeatureKind::default_for(dtype as i32), kind, "{dtype:?}");
        }
        assert!(FeatureKind::Image.feeds().contains(&D::DtUint8));
        assert_eq!(FeatureKind::Image.parsed_dtype(), D::DtString);
        assert_eq!("image".parse::<FeatureKind>(), Ok(FeatureKind::Image));
    }
}
