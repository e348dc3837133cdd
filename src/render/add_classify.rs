//! The report of `smtool add-classify` for people: what was written, and what the new signature
//! takes and returns.

use std::io::Write;

use crate::commands::add_classify::{AddClassifyReport, ObjectGraphStatus};
use crate::signature::{
    CLASSIFY_CLASSES, CLASSIFY_INPUTS, CLASSIFY_METHOD, CLASSIFY_SCORES, DEFAULT_SIGNATURE_KEY,
};

pub fn write(out: &mut dyn Write, r: &AddClassifyReport) -> std::io::Result<()> {
    writeln!(
        out,
        "wrote '{}': signature {} (method {CLASSIFY_METHOD})",
        r.dst.display(),
        r.keys
            .iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(" and ")
    )?;
    match (r.source_version, r.new_version) {
        (Some(from), Some(to)) => writeln!(out, "  new version {to}, edited from version {from}")?,
        (Some(from), None) => writeln!(out, "  edited from version {from}")?,
        _ => {}
    }
    if let Some(old) = &r.renamed_default {
        writeln!(
            out,
            "  the previous '{DEFAULT_SIGNATURE_KEY}' is now '{old}'"
        )?;
    }
    writeln!(
        out,
        "  wraps '{}' output '{}' ({} classes{}), top {} by score",
        r.wrapped_signature,
        r.output,
        r.classes,
        if r.softmax_added {
            ", Softmax added"
        } else {
            ""
        },
        r.top_k
    )?;
    writeln!(
        out,
        "  input '{CLASSIFY_INPUTS}': DT_STRING (-1) serialized tf.Example; outputs '{CLASSIFY_CLASSES}' DT_STRING (-1, {k}), '{CLASSIFY_SCORES}' DT_FLOAT (-1, {k})",
        k = r.top_k
    )?;
    for feat in &r.features {
        let shape = feat
            .shape
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        writeln!(
            out,
            "  feature '{}' ({}, [{}]) -> input '{}' {}",
            feat.feature,
            feat.kind.name(),
            shape,
            feat.input,
            feat.dtype
        )?;
    }
    match &r.object_graph {
        ObjectGraphStatus::NotTf2 => {}
        ObjectGraphStatus::Listed => {
            writeln!(out, "  also listed for tf.saved_model.load (TF2 object graph)")?
        }
        ObjectGraphStatus::NotListed { reason } => writeln!(
            out,
            "  note: tf.saved_model.load will not list it ({reason}); TensorFlow Serving and the TF1 loader will"
        )?,
    }
    write!(
        out,
        "  {} graph nodes cloned; {} files linked, {} copied",
        r.cloned_nodes, r.files.files_linked, r.files.files_copied
    )?;
    if r.files.dropped_fingerprint {
        write!(out, "; stale fingerprint.pb not kept")?;
    }
    writeln!(out)
}
