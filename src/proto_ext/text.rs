//! Protobuf text format and descriptors: the descriptor pool of every schema smtool compiles
//! in, and text-format parsing into the prost types (bounded in nesting before the parser
//! recurses).

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};

/// The descriptor pool of every schema smtool knows.
pub fn descriptor_pool() -> &'static DescriptorPool {
    static POOL: std::sync::OnceLock<DescriptorPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        // The set is produced by build.rs from the same schemas; failing here is a build defect.
        DescriptorPool::decode(crate::proto::DESCRIPTOR_SET)
            .unwrap_or_else(|e| panic!("embedded descriptor set is invalid: {e}"))
    })
}

/// How deeply messages may nest, in text and binary alike: protobuf's own default, which prost
/// applies when decoding and TensorFlow's parsers apply to both formats.
pub const MAX_MESSAGE_DEPTH: usize = 100;

/// The deepest nesting of `{...}` / `<...>` message blocks in protobuf text, outside strings and
/// comments. The text parser recurses once per level, so this is checked before it runs.
fn text_nesting_depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'{' | b'<' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b'>' => depth = depth.saturating_sub(1),
            b'#' => {
                for c in bytes.by_ref() {
                    if c == b'\n' {
                        break;
                    }
                }
            }
            b'"' | b'\'' => {
                while let Some(c) = bytes.next() {
                    if c == b'\\' {
                        bytes.next();
                    } else if c == b || c == b'\n' {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    max
}

/// Parses a protobuf text-format message of type `full_name` into the prost type `M`.
pub fn parse_text_format<M: Message + Default>(text: &str, full_name: &str) -> Result<M, String> {
    let depth = text_nesting_depth(text);
    if depth > MAX_MESSAGE_DEPTH {
        return Err(format!(
            "messages nest {depth} levels deep, more than the {MAX_MESSAGE_DEPTH} protobuf allows"
        ));
    }
    let desc = descriptor_pool()
        .get_message_by_name(full_name)
        .ok_or_else(|| format!("unknown message type {full_name}"))?;
    let dynamic = DynamicMessage::parse_text_format(desc, text).map_err(|e| e.to_string())?;
    M::decode(dynamic.encode_to_vec().as_slice()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_nesting_ignores_strings_and_comments() {
        assert_eq!(text_nesting_depth("a { b < c: 1 > } d {}"), 2);
        assert_eq!(text_nesting_depth("s: \"{{{\\\"{{\" # {{{{\n t: '<<'"), 0);
        assert_eq!(text_nesting_depth(&"x { ".repeat(150)), 150);
    }
}
