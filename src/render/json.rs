//! JSON output: the report structs serialized as one pretty-printed document.

use std::io::Write;

/// Writes `value` as pretty JSON followed by a newline.
pub fn write<T: serde::Serialize>(out: &mut dyn Write, value: &T) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
}
