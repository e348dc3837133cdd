//! TensorFlow 2.21's op registry (a committed snapshot, `data/tf_op_registry.txt`, written by
//! `python/dump_op_registry.py`): which ops exist, and how many outputs of which dtypes a node of
//! an op has given its attrs. Also the op-compatibility rule (SM601).

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use crate::proto::tensorflow as tf;
use tf::attr_value::Value;

use super::{Finding, GraphIndex, Rule};

/// The TensorFlow release the snapshot was taken from.
pub const TF_VERSION: &str = "2.21";

const SNAPSHOT: &str = include_str!("../../data/tf_op_registry.txt");

/// The dtype of one argument: fixed, or read from a type attr of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgType {
    Fixed(i32),
    Attr(&'static str),
}

/// One input or output argument of an op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgSpec {
    /// One tensor.
    One(ArgType),
    /// `count` tensors (an int attr) of one dtype.
    Repeated { count: &'static str, dtype: ArgType },
    /// One tensor per entry of a list(type) attr.
    List(&'static str),
}

/// The default value of an attr that an argument spec uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrDefault {
    /// An int, or a type attr's DataType number (the spec using the attr decides which).
    Int(i64),
    Types(Vec<i32>),
}

/// What the snapshot records of one op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpSig {
    pub inputs: Vec<ArgSpec>,
    pub outputs: Vec<ArgSpec>,
    pub defaults: Vec<(&'static str, AttrDefault)>,
}

/// The registered ops by name.
#[derive(Debug)]
pub struct Registry {
    ops: HashMap<&'static str, OpSig>,
}

impl Registry {
    /// The embedded TensorFlow 2.21 snapshot, parsed on first use.
    pub fn tf() -> &'static Registry {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        REGISTRY.get_or_init(|| {
            // The snapshot is part of the binary and checked by a unit test; failing here is a
            // build defect, not a user error.
            Registry::parse(SNAPSHOT)
                .unwrap_or_else(|e| panic!("embedded op registry snapshot is invalid: {e}"))
        })
    }

    /// Parses the snapshot format described in `python/dump_op_registry.py`.
    pub fn parse(text: &'static str) -> Result<Registry, String> {
        let mut ops = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |what: &str| format!("line {}: {what}", n + 1);
            let mut fields = line.split('\t');
            let (Some(name), Some(inputs), Some(outputs), Some(defaults), None) = (
                fields.next(),
                fields.next(),
                fields.next(),
                fields.next(),
                fields.next(),
            ) else {
                return Err(err("expected 4 tab-separated fields"));
            };
            let sig = OpSig {
                inputs: parse_args(inputs).map_err(|e| err(&e))?,
                outputs: parse_args(outputs).map_err(|e| err(&e))?,
                defaults: parse_defaults(defaults).map_err(|e| err(&e))?,
            };
            ops.insert(name, sig);
        }
        Ok(Registry { ops })
    }

    pub fn get(&self, op: &str) -> Option<&OpSig> {
        self.ops.get(op)
    }

    pub fn contains(&self, op: &str) -> bool {
        self.ops.contains_key(op)
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

fn parse_type(s: &'static str) -> ArgType {
    match s.parse::<i32>() {
        Ok(t) => ArgType::Fixed(t),
        Err(_) => ArgType::Attr(s),
    }
}

fn parse_args(field: &'static str) -> Result<Vec<ArgSpec>, String> {
    if field == "-" {
        return Ok(Vec::new());
    }
    field
        .split(',')
        .map(|a| {
            if let Some(list) = a.strip_prefix('[').and_then(|a| a.strip_suffix(']')) {
                Ok(ArgSpec::List(list))
            } else if let Some((count, dtype)) = a.split_once('*') {
                Ok(ArgSpec::Repeated {
                    count,
                    dtype: parse_type(dtype),
                })
            } else if a.is_empty() {
                Err("empty argument spec".to_owned())
            } else {
                Ok(ArgSpec::One(parse_type(a)))
            }
        })
        .collect()
}

fn parse_defaults(field: &'static str) -> Result<Vec<(&'static str, AttrDefault)>, String> {
    if field == "-" {
        return Ok(Vec::new());
    }
    field
        .split(';')
        .map(|d| {
            let (name, value) = d
                .split_once('=')
                .ok_or_else(|| format!("bad default '{d}'"))?;
            let bad = |_| format!("bad default '{d}'");
            let value =
                if let Some(list) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
                    let types = if list.is_empty() {
                        Vec::new()
                    } else {
                        list.split(',')
                            .map(|t| t.parse::<i32>().map_err(bad))
                            .collect::<Result<_, _>>()?
                    };
                    AttrDefault::Types(types)
                } else {
                    AttrDefault::Int(value.parse::<i64>().map_err(bad)?)
                };
            Ok((name, value))
        })
        .collect()
}

fn attr<'a>(node: &'a tf::NodeDef, name: &str) -> Option<&'a Value> {
    node.attr.get(name).and_then(|a| a.value.as_ref())
}

impl OpSig {
    fn default(&self, name: &str) -> Option<&AttrDefault> {
        self.defaults
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| d)
    }

    fn type_attr(&self, node: &tf::NodeDef, name: &str) -> Option<i32> {
        match attr(node, name) {
            Some(Value::Type(t)) => Some(*t),
            Some(_) => None,
            None => match self.default(name)? {
                AttrDefault::Int(t) => i32::try_from(*t).ok(),
                AttrDefault::Types(_) => None,
            },
        }
    }

    fn int_attr(&self, node: &tf::NodeDef, name: &str) -> Option<i64> {
        match attr(node, name) {
            Some(Value::I(i)) => Some(*i),
            Some(_) => None,
            None => match self.default(name)? {
                AttrDefault::Int(i) => Some(*i),
                _ => None,
            },
        }
    }

    fn list_attr(&self, node: &tf::NodeDef, name: &str) -> Option<Vec<i32>> {
        match attr(node, name) {
            Some(Value::List(l)) => Some(l.r#type.clone()),
            Some(_) => None,
            None => match self.default(name)? {
                AttrDefault::Types(t) => Some(t.clone()),
                _ => None,
            },
        }
    }

    fn arg_type(&self, node: &tf::NodeDef, t: &ArgType) -> Option<i32> {
        match t {
            ArgType::Fixed(t) => Some(*t),
            ArgType::Attr(a) => self.type_attr(node, a),
        }
    }

    /// The dtypes of a node's outputs (`None` for one whose dtype the attrs do not tell);
    /// `None` when the number of outputs cannot be worked out.
    pub fn output_types(&self, node: &tf::NodeDef) -> Option<Vec<Option<i32>>> {
        let mut out = Vec::new();
        for arg in &self.outputs {
            match arg {
                ArgSpec::One(t) => out.push(self.arg_type(node, t)),
                ArgSpec::Repeated { count, dtype } => {
                    let n = usize::try_from(self.int_attr(node, count)?).ok()?;
                    let t = self.arg_type(node, dtype);
                    out.extend(std::iter::repeat_n(t, n));
                }
                ArgSpec::List(l) => out.extend(self.list_attr(node, l)?.into_iter().map(Some)),
            }
        }
        Some(out)
    }
}

/// The dtypes of a node's outputs: from the registry, or from the signature of the library
/// function the node calls directly by name. `None` when unknown.
pub fn output_types(node: &tf::NodeDef, graph: &GraphIndex<'_>) -> Option<Vec<Option<i32>>> {
    if let Some(sig) = Registry::tf().get(&node.op) {
        return sig.output_types(node);
    }
    let f = graph.functions.get(node.op.as_str())?;
    let sig = f.signature.as_ref()?;
    let mut out = Vec::new();
    for arg in &sig.output_arg {
        if !arg.type_list_attr.is_empty() || !arg.number_attr.is_empty() {
            return None;
        }
        out.push(if arg.type_attr.is_empty() {
            Some(arg.r#type)
        } else {
            match attr(node, &arg.type_attr) {
                Some(Value::Type(t)) => Some(*t),
                _ => None,
            }
        });
    }
    Some(out)
}

/// SM601: ops TensorFlow 2.21 does not register and the function library does not define.
/// One finding per op, naming where it is first used and how often.
pub fn check(graph: &GraphIndex<'_>, allow: &std::collections::BTreeSet<String>) -> Vec<Finding> {
    let registry = Registry::tf();
    let mut unknown: BTreeMap<&str, (usize, Option<&str>, &str)> = BTreeMap::new();
    for r in crate::ops::all_nodes(graph.graph) {
        let op = r.node.op.as_str();
        if registry.contains(op) || graph.functions.contains_key(op) || allow.contains(op) {
            continue;
        }
        unknown
            .entry(op)
            .or_insert((0, r.function, r.node.name.as_str()))
            .0 += 1;
    }
    unknown
        .into_iter()
        .map(|(op, (count, function, node))| {
            let more = match count {
                1 => String::new(),
                n => format!(" ({n} nodes use it)"),
            };
            let mut f = Finding::new(
                Rule::UnknownOp,
                format!(
                    "op '{op}'{more} is not registered in TensorFlow {TF_VERSION} (a custom op, a \
                     typo, or an op from a newer release): TensorFlow Serving will fail to load \
                     the model; rebuild it with standard ops, or load the custom op library and \
                     pass --allow-op {op}"
                ),
            );
            f.node = Some(node.to_owned());
            f.function = function.map(str::to_owned);
            f
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(op: &str, attrs: &[(&str, Value)]) -> tf::NodeDef {
        tf::NodeDef {
            name: "n".into(),
            op: op.into(),
            attr: attrs
                .iter()
                .map(|(k, v)| {
                    (
                        (*k).to_owned(),
                        tf::AttrValue {
                            value: Some(v.clone()),
                        },
                    )
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn snapshot_parses_and_knows_common_ops() {
        let r = Registry::tf();
        assert!(r.len() > 1500, "only {} ops", r.len());
        for op in [
            "Placeholder",
            "Const",
            "StatefulPartitionedCall",
            "SaveV2",
            "ReadFile",
            "InitializeTableFromTextFileV2",
        ] {
            assert!(r.contains(op), "{op}");
        }
        assert!(!r.contains("MyCustomOp"));
    }

    #[test]
    fn output_types_follow_attrs_and_defaults() {
        let r = Registry::tf();
        let float = tf::DataType::DtFloat as i32;
        let string = tf::DataType::DtString as i32;
        let int32 = tf::DataType::DtInt32 as i32;
        let cases: Vec<(tf::NodeDef, Option<Vec<Option<i32>>>)> = vec![
            (
                node("Placeholder", &[("dtype", Value::Type(float))]),
                Some(vec![Some(float)]),
            ),
            (node("Placeholder", &[]), Some(vec![None])),
            // Unique's out_idx defaults to int32 and is stripped from saved graphs.
            (
                node("Unique", &[("T", Value::Type(string))]),
                Some(vec![Some(string), Some(int32)]),
            ),
            (
                node(
                    "StatefulPartitionedCall",
                    &[(
                        "Tout",
                        Value::List(tf::attr_value::ListValue {
                            r#type: vec![float, string],
                            ..Default::default()
                        }),
                    )],
                ),
                Some(vec![Some(float), Some(string)]),
            ),
            (node("StatefulPartitionedCall", &[]), None),
            (node("NoOp", &[]), Some(vec![])),
            (node("ReadFile", &[]), Some(vec![Some(string)])),
        ];
        for (n, want) in cases {
            let sig = r.get(&n.op).unwrap();
            assert_eq!(sig.output_types(&n), want, "{}", n.op);
        }
    }

    #[test]
    fn malformed_snapshot_lines_are_rejected() {
        assert!(Registry::parse("Op\t-\t-\n").is_err());
        assert!(Registry::parse("Op\t-\t-\tT=x\n").is_err());
        assert!(Registry::parse("Op\tT,\t-\t-\n").is_err());
        let r = Registry::parse("# c\nOp\tN*T,[L]\t7\tN=2\n").unwrap();
        assert_eq!(
            r.get("Op").unwrap().inputs,
            vec![
                ArgSpec::Repeated {
                    count: "N",
                    dtype: ArgType::Attr("T")
                },
                ArgSpec::List("L")
            ]
        );
    }
}
