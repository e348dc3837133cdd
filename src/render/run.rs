//! `smtool run`'s outputs: a table of name, dtype, shape and values for people (long tensors
//! cut as NumPy prints them: the first and last three along each dimension), or the JSON body
//! TF Serving answers with.

use std::fmt::Write as _;
use std::io::Write;

use comfy_table::{presets, Cell, ContentArrangement, Table};

use crate::commands::run::RunReport;
use crate::proto_ext::dtype_name;
use crate::serve::json;
use crate::serve::tensor::{Tensor, Values};

/// Tensors with more elements are summarized.
const FULL_LIMIT: usize = 100;
/// Elements kept at each end of a summarized dimension.
const EDGE: usize = 3;
/// Characters of one string element shown.
const STRING_CHARS: usize = 40;

/// The outputs as a table, after a line naming what ran.
pub fn table(out: &mut dyn Write, report: &RunReport) -> std::io::Result<()> {
    writeln!(
        out,
        "{} version {}, signature '{}', :{}",
        report.model,
        report.version,
        report.signature,
        report.method.name()
    )?;
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(["output", "dtype", "shape", "values"].map(Cell::new));
    for o in &report.outputs {
        t.add_row(vec![
            o.name.clone(),
            dtype_name(o.tensor.dtype()),
            crate::proto_ext::shape_debug(&o.tensor.dims),
            values(&o.tensor),
        ]);
    }
    writeln!(out, "{t}")?;
    for path in &report.written {
        writeln!(out, "wrote {}", path.display())?;
    }
    Ok(())
}

/// TF Serving's response body.
pub fn json(out: &mut dyn Write, report: &RunReport) -> std::io::Result<()> {
    writeln!(out, "{}", report.response)
}

/// The values of a tensor as nested lists, cut when it is large.
pub fn values(t: &Tensor) -> String {
    let summarize = t.values.len() > FULL_LIMIT;
    let mut out = String::new();
    let mut offset = 0;
    nested(&mut out, t, 0, summarize, &mut offset);
    out
}

/// Elements per step along dimension `dim` (row-major strides).
fn stride(dims: &[i64], dim: usize) -> usize {
    dims[dim + 1..].iter().map(|&d| d.max(0) as usize).product()
}

fn nested(out: &mut String, t: &Tensor, dim: usize, summarize: bool, offset: &mut usize) {
    if dim == t.dims.len() {
        element(out, &t.values, *offset);
        return;
    }
    let n = t.dims[dim].max(0) as usize;
    let step = stride(&t.dims, dim);
    let start = *offset;
    out.push('[');
    let cut = summarize && n > 2 * EDGE;
    let mut first = true;
    for i in 0..n {
        if cut && i == EDGE {
            out.push_str(if dim + 1 == t.dims.len() {
                ", ..."
            } else {
                ",\n..."
            });
            continue;
        }
        if cut && i > EDGE && i < n - EDGE {
            continue;
        }
        if !first {
            out.push_str(if dim + 1 == t.dims.len() { ", " } else { ",\n" });
        }
        first = false;
        *offset = start + i * step;
        nested(out, t, dim + 1, summarize, offset);
    }
    out.push(']');
}

fn element(out: &mut String, values: &Values, i: usize) {
    match values {
        Values::Float(v) => json::write_f32(out, v[i]),
        Values::Double(v) => json::write_f64(out, v[i]),
        Values::Int32(v) => push(out, v[i]),
        Values::UInt8(v) => push(out, v[i]),
        Values::Int16(v) => push(out, v[i]),
        Values::Int8(v) => push(out, v[i]),
        Values::Int64(v) => push(out, v[i]),
        Values::Bool(v) => push(out, v[i]),
        Values::UInt16(v) => push(out, v[i]),
        Values::UInt32(v) => push(out, v[i]),
        Values::UInt64(v) => push(out, v[i]),
        Values::Half(v) => {
            let _ = write!(out, "0x{:04x}", v[i]);
        }
        Values::String(v) => {
            let text = String::from_utf8_lossy(&v[i]);
            let shown: String = text.chars().take(STRING_CHARS).collect();
            let _ = write!(out, "{:?}", shown);
            if shown.len() < text.len() {
                out.push_str("...");
            }
        }
    }
}

fn push(out: &mut String, v: impl std::fmt::Display) {
    let _ = write!(out, "{v}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_tensors_in_full_large_ones_cut_at_both_ends() {
        let t = Tensor::new(vec![2, 2], Values::Float(vec![1.0, 0.5, -2.0, 3.25])).unwrap();
        assert_eq!(values(&t), "[[1.0, 0.5],\n[-2.0, 3.25]]");
        let t = Tensor::new(vec![200], Values::Int64((0..200).collect())).unwrap();
        assert_eq!(values(&t), "[0, 1, 2, ..., 197, 198, 199]");
        let t = Tensor::new(vec![20, 10], Values::Int32((0..200).collect())).unwrap();
        let text = values(&t);
        assert!(
            text.starts_with("[[0, 1, 2, ..., 7, 8, 9],\n[10, 11,"),
            "{text}"
        );
        assert!(text.contains(",\n...,\n[170,"), "{text}");
        assert!(text.ends_with("197, 198, 199]]"), "{text}");
        let t = Tensor::new(vec![], Values::Bool(vec![true])).unwrap();
        assert_eq!(values(&t), "true");
        let t = Tensor::new(vec![0, 3], Values::Float(vec![])).unwrap();
        assert_eq!(values(&t), "[]");
        let long = "é".repeat(50);
        let t = Tensor::new(vec![1], Values::String(vec![long.into_bytes()])).unwrap();
        assert_eq!(values(&t), format!("[\"{}\"...]", "é".repeat(40)));
    }
}
