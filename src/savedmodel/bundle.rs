//! Reading TensorFlow's tensor-bundle index (`variables/variables.index`): a LevelDB-style SSTable
//! whose key `""` holds a `BundleHeaderProto` and every other key a `BundleEntryProto`.
//! Only the index is read; tensor data stays in the shards.

use std::path::{Path, PathBuf};

use prost::Message;

use crate::proto::tensorflow as tf;

/// Why an index could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read '{}': {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("'{}' is not a valid variables index ({detail}); re-export the model or restore the file", path.display())]
    Corrupt { path: PathBuf, detail: String },
    /// Not a regular file, or larger than smtool reads.
    #[error(transparent)]
    File(#[from] crate::files::FileError),
}

/// One tensor recorded in the index.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleEntry {
    pub key: String,
    pub entry: tf::BundleEntryProto,
}

/// A parsed index: the header and the entries in key order.
#[derive(Debug, Clone, Default)]
pub struct BundleIndex {
    pub header: tf::BundleHeaderProto,
    pub entries: Vec<BundleEntry>,
}

impl BundleIndex {
    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<Self, BundleError> {
        let bytes =
            crate::files::read_capped(path, crate::files::BUNDLE_INDEX_LIMIT, "a variables index")?;
        Self::parse(&bytes).map_err(|detail| BundleError::Corrupt {
            path: path.to_path_buf(),
            detail,
        })
    }

    /// Parses the bytes of an index file.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let mut header = None;
        let mut entries = Vec::new();
        for (key, value) in table_entries(bytes)? {
            if key.is_empty() {
                header = Some(
                    tf::BundleHeaderProto::decode(value.as_slice())
                        .map_err(|e| format!("bad header: {e}"))?,
                );
                continue;
            }
            let key = String::from_utf8(key).map_err(|_| "a key is not UTF-8".to_owned())?;
            let entry = tf::BundleEntryProto::decode(value.as_slice())
                .map_err(|e| format!("bad entry for '{key}': {e}"))?;
            entries.push(BundleEntry { key, entry });
        }
        let header: tf::BundleHeaderProto = header.ok_or("no header entry")?;
        // Every shard TensorFlow writes holds at least one tensor (an index without variables
        // names one empty shard), so a larger count is corrupt; checking it here keeps the work
        // of listing and looking for the shards bounded by the index's size.
        let max_shards = entries.len().saturating_add(1);
        if usize::try_from(header.num_shards).is_ok_and(|n| n > max_shards) {
            return Err(format!(
                "its header names {} data shards but it records only {} tensors",
                header.num_shards,
                entries.len()
            ));
        }
        Ok(Self { header, entries })
    }

    /// Data shard file names for an index at `variables/variables.index`:
    /// `variables.data-00000-of-00001` and so on.
    pub fn shard_names(&self, prefix: &str) -> Vec<String> {
        let n = self.header.num_shards.max(0);
        (0..n)
            .map(|i| format!("{prefix}.data-{i:05}-of-{n:05}"))
            .collect()
    }
}

/// A raw key and value of an SSTable.
type KeyValue = (Vec<u8>, Vec<u8>);

const FOOTER_LEN: usize = 48;
const MAGIC: u64 = 0xdb47_7524_8b80_fb57;
const BLOCK_TRAILER_LEN: usize = 5;

/// Snappy's densest element, a 3-byte copy of 64 bytes, expands its input 21⅓ times: a block
/// claiming more than this is corrupt, whatever its header says.
const SNAPPY_MAX_EXPANSION: usize = 22;

/// How many bytes reading a table may materialise (decompressed blocks, keys restored from
/// their shared prefixes, values) per byte of the file, plus a fixed allowance. A real index
/// stays far below this; a crafted one (keys that each share almost all of a long previous key,
/// index entries that all point at one data block) is refused instead of costing memory and time
/// quadratic in its size.
const EXPANSION_PER_BYTE: usize = 64;
const EXPANSION_ALLOWANCE: usize = 1 << 20;

/// The bytes a read may still materialise.
struct Budget {
    left: usize,
}

impl Budget {
    fn for_file(len: usize) -> Self {
        Budget {
            left: len
                .saturating_mul(EXPANSION_PER_BYTE)
                .saturating_add(EXPANSION_ALLOWANCE),
        }
    }

    fn spend(&mut self, n: usize) -> Result<(), String> {
        self.left = self.left.checked_sub(n).ok_or_else(|| {
            format!(
                "its blocks and keys expand to more than {EXPANSION_PER_BYTE} times the file's \
                 size"
            )
        })?;
        Ok(())
    }
}

fn varint(bytes: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint too long".into())
}

fn usize_varint(bytes: &[u8], pos: &mut usize) -> Result<usize, String> {
    usize::try_from(varint(bytes, pos)?).map_err(|_| "value out of range".to_owned())
}

#[derive(Debug, Clone, Copy)]
struct Handle {
    offset: usize,
    size: usize,
}

fn handle(bytes: &[u8], pos: &mut usize) -> Result<Handle, String> {
    Ok(Handle {
        offset: usize_varint(bytes, pos)?,
        size: usize_varint(bytes, pos)?,
    })
}

fn u32_le(bytes: &[u8], at: usize) -> Result<u32, String> {
    let b = at
        .checked_add(4)
        .and_then(|end| bytes.get(at..end))
        .ok_or("truncated block")?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// LevelDB stores CRCs masked so that a CRC of data containing CRCs stays well distributed.
fn unmask_crc(masked: u32) -> u32 {
    let rot = masked.wrapping_sub(0xa282_ead8);
    rot.rotate_left(15)
}

/// Where a block and its trailer end, when they lie inside the file.
fn block_end(file: &[u8], h: Handle) -> Result<usize, String> {
    h.offset
        .checked_add(h.size)
        .and_then(|e| e.checked_add(BLOCK_TRAILER_LEN))
        .filter(|&e| e <= file.len())
        .ok_or_else(|| "a block lies past the end of the file (truncated?)".to_owned())
}

/// Reads one block, checks its CRC32C and decompresses it.
fn block(file: &[u8], h: Handle, budget: &mut Budget) -> Result<Vec<u8>, String> {
    let end = block_end(file, h)?;
    let data = &file[h.offset..h.offset + h.size];
    let kind = file[h.offset + h.size];
    let stored = unmask_crc(u32_le(file, end - 4)?);
    let actual = crc32c::crc32c_append(crc32c::crc32c(data), &[kind]);
    if stored != actual {
        return Err(format!(
            "block at offset {} fails its CRC32C check",
            h.offset
        ));
    }
    match kind {
        0 => {
            budget.spend(data.len())?;
            Ok(data.to_vec())
        }
        1 => {
            // The decoder allocates the length the block claims before it looks further.
            let claimed =
                snap::raw::decompress_len(data).map_err(|e| format!("bad snappy block: {e}"))?;
            if claimed > data.len().saturating_mul(SNAPPY_MAX_EXPANSION) {
                return Err(format!(
                    "snappy block at offset {} claims {claimed} bytes, more than {} bytes of \
                     compressed data can hold",
                    h.offset,
                    data.len()
                ));
            }
            budget.spend(claimed)?;
            snap::raw::Decoder::new()
                .decompress_vec(data)
                .map_err(|e| format!("bad snappy block: {e}"))
        }
        other => Err(format!("unknown block compression {other}")),
    }
}

/// The key/value pairs of one block, restoring prefix-compressed keys.
fn block_entries(block: &[u8], budget: &mut Budget) -> Result<Vec<KeyValue>, String> {
    if block.len() < 4 {
        return Err("block too short".into());
    }
    let restarts = u32_le(block, block.len() - 4)? as usize;
    let limit = restarts
        .checked_add(1)
        .and_then(|n| n.checked_mul(4))
        .and_then(|n| block.len().checked_sub(n))
        .ok_or("bad restart count")?;
    let mut out = Vec::new();
    let mut key: Vec<u8> = Vec::new();
    let mut pos = 0;
    while pos < limit {
        let shared = usize_varint(block, &mut pos)?;
        let unshared = usize_varint(block, &mut pos)?;
        let value_len = usize_varint(block, &mut pos)?;
        if shared > key.len() {
            return Err("bad key prefix".into());
        }
        let key_end = pos.checked_add(unshared).filter(|&e| e <= limit);
        let key_end = key_end.ok_or("key past block end")?;
        let value_end = key_end
            .checked_add(value_len)
            .filter(|&e| e <= limit)
            .ok_or("value past block end")?;
        budget.spend(shared + unshared + value_len)?;
        key.truncate(shared);
        key.extend_from_slice(&block[pos..key_end]);
        out.push((key.clone(), block[key_end..value_end].to_vec()));
        pos = value_end;
    }
    Ok(out)
}

/// Every key/value pair of an SSTable, in order, values undecoded. Memory and time are bounded
/// by the file's size: data blocks must follow one another as LevelDB writes them (so none is
/// read twice), and what they expand to is budgeted.
pub fn table_entries(file: &[u8]) -> Result<Vec<KeyValue>, String> {
    if file.len() < FOOTER_LEN {
        return Err("file shorter than a table footer".into());
    }
    let footer = &file[file.len() - FOOTER_LEN..];
    let magic = u64::from(u32_le(footer, 40)?) | (u64::from(u32_le(footer, 44)?) << 32);
    if magic != MAGIC {
        return Err("no table magic number at the end (truncated?)".into());
    }
    let mut budget = Budget::for_file(file.len());
    let mut pos = 0;
    let _metaindex = handle(footer, &mut pos)?;
    let index = handle(footer, &mut pos)?;
    let mut out = Vec::new();
    let mut next_free = 0;
    for (_, value) in block_entries(&block(file, index, &mut budget)?, &mut budget)? {
        let mut p = 0;
        let data = handle(&value, &mut p)?;
        if data.offset < next_free {
            return Err(format!(
                "the index points at a data block at offset {} that overlaps an earlier one",
                data.offset
            ));
        }
        next_free = block_end(file, data)?;
        out.extend(block_entries(
            &block(file, data, &mut budget)?,
            &mut budget,
        )?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_mask_round_trip() {
        for crc in [0u32, 1, 0xdead_beef, u32::MAX] {
            assert_eq!(unmask_crc(super::super::tfrecord::mask_crc(crc)), crc);
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!(BundleIndex::parse(b"short").is_err());
        assert!(BundleIndex::parse(&[0u8; 100])
            .unwrap_err()
            .contains("magic"));
    }
}
