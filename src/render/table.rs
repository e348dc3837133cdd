//! Table output for people, with comfy-table. Order follows the report (sorted, deterministic).

use std::io::Write;

use comfy_table::{presets, Cell, ContentArrangement, Table};

use crate::commands::inspect::{InspectReport, MetaGraphReport, ModelReport, TensorReport};

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().map(Cell::new));
    t
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// Writes an inspect report as tables.
pub fn inspect(out: &mut dyn Write, report: &InspectReport) -> std::io::Result<()> {
    for (i, model) in report.models.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        model_tables(out, model)?;
    }
    Ok(())
}

fn model_tables(out: &mut dyn Write, m: &ModelReport) -> std::io::Result<()> {
    write!(out, "SavedModel {}", m.path)?;
    if let Some(v) = m.version {
        let all: Vec<String> = m.available_versions.iter().map(i64::to_string).collect();
        write!(out, " (version {v}; versions: {})", all.join(", "))?;
    }
    writeln!(out)?;

    let mut t = table(&["tag-set", "TensorFlow", "nodes", "functions", "ops"]);
    for g in &m.meta_graphs {
        t.add_row(vec![
            g.tags.join(","),
            or_dash(&g.tensorflow_version).to_owned(),
            g.node_count.to_string(),
            g.function_count.to_string(),
            g.op_count.to_string(),
        ]);
    }
    writeln!(out, "{t}")?;

    for g in &m.meta_graphs {
        signature_table(out, g)?;
        if let Some(init) = &g.init_op {
            match init {
                Some(op) => writeln!(
                    out,
                    "Init op ({}): {}",
                    serde_json::to_value(&op.source)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    op.names.join(", ")
                )?,
                None => writeln!(out, "Init op: none")?,
            }
        }
        if let Some(ops) = &g.ops {
            writeln!(
                out,
                "\nOps of tag-set '{}' (graph and function library)",
                g.tags.join(",")
            )?;
            let mut t = table(&["op", "graph", "functions"]);
            for o in ops {
                t.add_row(vec![
                    o.op.clone(),
                    o.graph.to_string(),
                    o.functions.to_string(),
                ]);
            }
            writeln!(out, "{t}")?;
        }
    }

    if let Some(vars) = &m.variables {
        if vars.present {
            writeln!(
                out,
                "\nVariables ({} tensors, {} bytes, {} shard{})",
                vars.entries.len(),
                vars.total_bytes,
                vars.num_shards,
                if vars.num_shards == 1 { "" } else { "s" }
            )?;
            let mut t = table(&["name", "dtype", "shape", "bytes"]);
            for v in &vars.entries {
                t.add_row(vec![
                    v.name.clone(),
                    v.dtype.clone(),
                    v.shape_text.clone(),
                    v.bytes.to_string(),
                ]);
            }
            writeln!(out, "{t}")?;
        } else {
            writeln!(out, "\nVariables: none (no variables/variables.index)")?;
        }
    }
    for (title, files) in [("Assets", &m.assets), ("Extra assets", &m.assets_extra)] {
        let Some(files) = files else { continue };
        if files.is_empty() {
            writeln!(out, "\n{title}: none")?;
            continue;
        }
        writeln!(out, "\n{title}")?;
        let mut t = table(&["file", "bytes"]);
        for f in files {
            t.add_row(vec![f.path.clone(), f.bytes.to_string()]);
        }
        writeln!(out, "{t}")?;
    }
    if let Some(fp) = &m.fingerprint {
        match fp {
            None => writeln!(out, "\nFingerprint: none (no fingerprint.pb)")?,
            Some(fp) => {
                writeln!(out, "\nFingerprint")?;
                let mut t = table(&["field", "value"]);
                for (k, v) in [
                    ("saved_model_checksum", &fp.saved_model_checksum),
                    ("graph_def_program_hash", &fp.graph_def_program_hash),
                    ("signature_def_hash", &fp.signature_def_hash),
                    ("saved_object_graph_hash", &fp.saved_object_graph_hash),
                    ("checkpoint_hash", &fp.checkpoint_hash),
                ] {
                    t.add_row(vec![k, v.as_str()]);
                }
                if !fp.uuid.is_empty() {
                    t.add_row(vec!["uuid", fp.uuid.as_str()]);
                }
                writeln!(out, "{t}")?;
            }
        }
    }
    Ok(())
}

fn tensor_cells(dir: &str, t: &TensorReport) -> Vec<String> {
    let tensor = match (&t.name, &t.coo_sparse, &t.components) {
        (Some(n), _, _) => n.clone(),
        (_, Some(c), _) => format!(
            "sparse: values {}, indices {}, dense_shape {}",
            c.values, c.indices, c.dense_shape
        ),
        (_, _, Some(c)) => format!(
            "composite: {}",
            c.iter()
                .map(|x| x.name.clone().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => "-".to_owned(),
    };
    vec![
        dir.to_owned(),
        t.key.clone(),
        t.dtype.clone(),
        t.shape_text.clone(),
        tensor,
    ]
}

fn signature_table(out: &mut dyn Write, g: &MetaGraphReport) -> std::io::Result<()> {
    writeln!(out, "\nSignatures of tag-set '{}'", g.tags.join(","))?;
    if g.signatures.is_empty() {
        writeln!(out, "none")?;
        return Ok(());
    }
    let mut t = table(&[
        "signature",
        "method",
        "serves",
        "",
        "key",
        "dtype",
        "shape",
        "tensor",
    ]);
    for s in &g.signatures {
        let endpoints = s
            .endpoints
            .iter()
            .map(|e| format!(":{}", e.name()))
            .collect::<Vec<_>>()
            .join(" ");
        let rows = s
            .inputs
            .iter()
            .map(|i| tensor_cells("in", i))
            .chain(s.outputs.iter().map(|o| tensor_cells("out", o)));
        let mut first = true;
        for cells in rows {
            let mut row = if first {
                vec![
                    s.key.clone(),
                    or_dash(&s.method_name).to_owned(),
                    or_dash(&endpoints).to_owned(),
                ]
            } else {
                vec![String::new(); 3]
            };
            first = false;
            row.extend(cells);
            t.add_row(row);
        }
        if first {
            t.add_row(vec![s.key.clone(), s.method_name.clone(), endpoints]);
        }
    }
    writeln!(out, "{t}")
}
