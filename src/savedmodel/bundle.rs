//! Reading TensorFlow's tensor-bundle index (`variables/variables.index`): a LevelDB-style SSTable
//! whose key `""` holds a `BundleHeaderProto` and every other key a `BundleEntryProto`.
//! Only the index is read; tensor data stays in the shards.

use std::path::{Path, PathBuf};

use prost::Message;

use crate::proto::tensorflow as tf;

/// Why an index could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The message holds `error`'s text, so it is not also a `source` (which would show twice).
    #[error("'{}' is not a valid variables index ({error}); re-export the model or restore the file", path.display())]
    Corrupt { path: PathBuf, error: IndexError },
    /// Not a regular file, or larger than smtool reads.
    #[error(transparent)]
    File(#[from] crate::files::FileError),
}

/// Why the bytes of a variables index are not a well-formed one. Like the TFRecord reader's
/// [`TfRecordError`](super::tfrecord::TfRecordError), it describes the bytes; [`BundleError`]
/// adds the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error("file shorter than a table footer")]
    ShortFile,
    #[error("no table magic number at the end (truncated?)")]
    NoMagic,
    #[error("bad varint ({0})")]
    Varint(prost::DecodeError),
    #[error("value out of range")]
    OutOfRange,
    #[error("truncated block")]
    TruncatedBlock,
    #[error("a block lies past the end of the file (truncated?)")]
    BlockPastEnd,
    #[error("block at offset {offset} fails its CRC32C check")]
    BlockCrc { offset: usize },
    #[error("bad snappy block: {0}")]
    Snappy(snap::Error),
    #[error(
        "snappy block at offset {offset} claims {claimed} bytes, more than {size} bytes of \
         compressed data can hold"
    )]
    SnappyClaim {
        offset: usize,
        claimed: usize,
        size: usize,
    },
    #[error("unknown block compression {0}")]
    Compression(u8),
    #[error("block too short")]
    ShortBlock,
    #[error("bad restart count")]
    RestartCount,
    #[error("bad key prefix")]
    KeyPrefix,
    #[error("key past block end")]
    KeyPastEnd,
    #[error("value past block end")]
    ValuePastEnd,
    #[error("the index points at a data block at offset {offset} that overlaps an earlier one")]
    Overlap { offset: usize },
    #[error("its blocks and keys expand to more than {EXPANSION_PER_BYTE} times the file's size")]
    Expansion,
    #[error("bad header: {0}")]
    Header(prost::DecodeError),
    #[error("a key is not UTF-8")]
    KeyNotUtf8,
    #[error("bad entry for '{key}': {error}")]
    Entry {
        key: String,
        error: prost::DecodeError,
    },
    #[error("no header entry")]
    NoHeader,
    #[error("its header names {num_shards} data shards but it records only {entries} tensors")]
    TooManyShards { num_shards: i32, entries: usize },
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
        Self::parse(&bytes).map_err(|error| BundleError::Corrupt {
            path: path.to_path_buf(),
            error,
        })
    }

    /// Parses the bytes of an index file.
    pub fn parse(bytes: &[u8]) -> Result<Self, IndexError> {
        let mut header = None;
        let mut entries = Vec::new();
        for (key, value) in table_entries(bytes)? {
            if key.is_empty() {
                header = Some(
                    tf::BundleHeaderProto::decode(value.as_slice()).map_err(IndexError::Header)?,
                );
                continue;
            }
            let key = String::from_utf8(key).map_err(|_| IndexError::KeyNotUtf8)?;
            let entry = match tf::BundleEntryProto::decode(value.as_slice()) {
                Ok(entry) => entry,
                Err(error) => return Err(IndexError::Entry { key, error }),
            };
            entries.push(BundleEntry { key, entry });
        }
        let header: tf::BundleHeaderProto = header.ok_or(IndexError::NoHeader)?;
        // Every shard TensorFlow writes holds at least one tensor (an index without variables
        // names one empty shard), so a larger count is corrupt; checking it here keeps the work
        // of listing and looking for the shards bounded by the index's size.
        let max_shards = entries.len().saturating_add(1);
        if usize::try_from(header.num_shards).is_ok_and(|n| n > max_shards) {
            return Err(IndexError::TooManyShards {
                num_shards: header.num_shards,
                entries: entries.len(),
            });
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

    fn spend(&mut self, n: usize) -> Result<(), IndexError> {
        self.left = self.left.checked_sub(n).ok_or(IndexError::Expansion)?;
        Ok(())
    }
}

/// The varint at `bytes[*pos..]`, moving `pos` past it (LevelDB's varints are protobuf's).
pub(crate) fn usize_varint(bytes: &[u8], pos: &mut usize) -> Result<usize, IndexError> {
    let mut rest = bytes.get(*pos..).unwrap_or_default();
    let before = rest.len();
    let value = prost::encoding::decode_varint(&mut rest).map_err(IndexError::Varint)?;
    *pos += before - rest.len();
    usize::try_from(value).map_err(|_| IndexError::OutOfRange)
}

#[derive(Debug, Clone, Copy)]
struct Handle {
    offset: usize,
    size: usize,
}

fn handle(bytes: &[u8], pos: &mut usize) -> Result<Handle, IndexError> {
    Ok(Handle {
        offset: usize_varint(bytes, pos)?,
        size: usize_varint(bytes, pos)?,
    })
}

fn u32_le(bytes: &[u8], at: usize) -> Result<u32, IndexError> {
    let b = at
        .checked_add(4)
        .and_then(|end| bytes.get(at..end))
        .ok_or(IndexError::TruncatedBlock)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Where a block and its trailer end, when they lie inside the file.
fn block_end(file: &[u8], h: Handle) -> Result<usize, IndexError> {
    h.offset
        .checked_add(h.size)
        .and_then(|e| e.checked_add(BLOCK_TRAILER_LEN))
        .filter(|&e| e <= file.len())
        .ok_or(IndexError::BlockPastEnd)
}

/// Reads one block, checks its CRC32C and decompresses it.
fn block(file: &[u8], h: Handle, budget: &mut Budget) -> Result<Vec<u8>, IndexError> {
    let end = block_end(file, h)?;
    let data = &file[h.offset..h.offset + h.size];
    let kind = file[h.offset + h.size];
    let stored = super::crc::unmask(u32_le(file, end - 4)?);
    let actual = crc32c::crc32c_append(crc32c::crc32c(data), &[kind]);
    if stored != actual {
        return Err(IndexError::BlockCrc { offset: h.offset });
    }
    match kind {
        0 => {
            budget.spend(data.len())?;
            Ok(data.to_vec())
        }
        1 => {
            // The decoder allocates the length the block claims before it looks further.
            let claimed = snap::raw::decompress_len(data).map_err(IndexError::Snappy)?;
            if claimed > data.len().saturating_mul(SNAPPY_MAX_EXPANSION) {
                return Err(IndexError::SnappyClaim {
                    offset: h.offset,
                    claimed,
                    size: data.len(),
                });
            }
            budget.spend(claimed)?;
            snap::raw::Decoder::new()
                .decompress_vec(data)
                .map_err(IndexError::Snappy)
        }
        other => Err(IndexError::Compression(other)),
    }
}

/// The key/value pairs of one block, restoring prefix-compressed keys.
fn block_entries(block: &[u8], budget: &mut Budget) -> Result<Vec<KeyValue>, IndexError> {
    if block.len() < 4 {
        return Err(IndexError::ShortBlock);
    }
    let restarts = u32_le(block, block.len() - 4)? as usize;
    let limit = restarts
        .checked_add(1)
        .and_then(|n| n.checked_mul(4))
        .and_then(|n| block.len().checked_sub(n))
        .ok_or(IndexError::RestartCount)?;
    let mut out = Vec::new();
    let mut key: Vec<u8> = Vec::new();
    let mut pos = 0;
    while pos < limit {
        let shared = usize_varint(block, &mut pos)?;
        let unshared = usize_varint(block, &mut pos)?;
        let value_len = usize_varint(block, &mut pos)?;
        if shared > key.len() {
            return Err(IndexError::KeyPrefix);
        }
        let key_end = pos.checked_add(unshared).filter(|&e| e <= limit);
        let key_end = key_end.ok_or(IndexError::KeyPastEnd)?;
        let value_end = key_end
            .checked_add(value_len)
            .filter(|&e| e <= limit)
            .ok_or(IndexError::ValuePastEnd)?;
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
pub fn table_entries(file: &[u8]) -> Result<Vec<KeyValue>, IndexError> {
    if file.len() < FOOTER_LEN {
        return Err(IndexError::ShortFile);
    }
    let footer = &file[file.len() - FOOTER_LEN..];
    let magic = u64::from(u32_le(footer, 40)?) | (u64::from(u32_le(footer, 44)?) << 32);
    if magic != MAGIC {
        return Err(IndexError::NoMagic);
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
            return Err(IndexError::Overlap {
                offset: data.offset,
            });
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
    fn rejects_garbage() {
        assert!(BundleIndex::parse(b"short").is_err());
        assert!(BundleIndex::parse(&[0u8; 100])
            .unwrap_err()
            .to_string()
            .contains("magic"));
    }
}
