//! Writing LevelDB-style tables (the format of `variables/variables.index`) byte by byte, so tests
//! can build well-formed and hostile index files small enough to read.
#![allow(dead_code)]

use prost::Message;
use smtool::proto::tensorflow as tf;

use smtool::savedmodel::crc;

fn varint(out: &mut Vec<u8>, v: u64) {
    prost::encoding::encode_varint(v, out);
}

/// One entry of a block as written: `shared` bytes of the previous key, then `unshared`.
pub struct Raw<'a> {
    pub shared: u64,
    pub unshared: &'a [u8],
    pub value: &'a [u8],
}

/// Block contents (entries, one restart point at 0, the restart count), without a trailer.
pub fn block(entries: &[Raw<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        varint(&mut out, e.shared);
        varint(&mut out, e.unshared.len() as u64);
        varint(&mut out, e.value.len() as u64);
        out.extend_from_slice(e.unshared);
        out.extend_from_slice(e.value);
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out
}

/// A block of whole keys (no shared prefixes).
pub fn plain_block(entries: &[(&[u8], &[u8])]) -> Vec<u8> {
    let raw: Vec<Raw<'_>> = entries
        .iter()
        .map(|(k, v)| Raw {
            shared: 0,
            unshared: k,
            value: v,
        })
        .collect();
    block(&raw)
}

/// An encoded block handle.
pub fn handle(offset: u64, size: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(&mut out, offset);
    varint(&mut out, size);
    out
}

/// A table file being written.
#[derive(Default)]
pub struct Table {
    pub bytes: Vec<u8>,
}

impl Table {
    /// Appends `contents` with its trailer (compression `kind`, masked CRC32C); returns the
    /// block's `(offset, size)`.
    pub fn push(&mut self, contents: &[u8], kind: u8) -> (u64, u64) {
        let offset = self.bytes.len() as u64;
        self.bytes.extend_from_slice(contents);
        self.bytes.push(kind);
        let crc = crc32c::crc32c_append(crc32c::crc32c(contents), &[kind]);
        self.bytes.extend_from_slice(&crc::mask(crc).to_le_bytes());
        (offset, contents.len() as u64)
    }

    /// Appends an index block whose entries point at `data` blocks, and the footer.
    pub fn finish(mut self, data: &[(u64, u64)]) -> Vec<u8> {
        let handles: Vec<Vec<u8>> = data.iter().map(|&(o, s)| handle(o, s)).collect();
        let keys: Vec<Vec<u8>> = (0..data.len()).map(|i| vec![b'k', i as u8]).collect();
        let entries: Vec<(&[u8], &[u8])> = keys
            .iter()
            .zip(&handles)
            .map(|(k, h)| (k.as_slice(), h.as_slice()))
            .collect();
        let (io, is) = self.push(&plain_block(&entries), 0);
        let mut footer = handle(0, 0);
        footer.extend(handle(io, is));
        footer.resize(40, 0);
        footer.extend_from_slice(&0xdb47_7524_8b80_fb57u64.to_le_bytes());
        self.bytes.extend(footer);
        self.bytes
    }
}

/// A whole index file: the header and `entries` in one uncompressed data block.
pub fn index(header: &tf::BundleHeaderProto, entries: &[(&str, tf::BundleEntryProto)]) -> Vec<u8> {
    let header = header.encode_to_vec();
    let values: Vec<Vec<u8>> = entries.iter().map(|(_, e)| e.encode_to_vec()).collect();
    let mut kv: Vec<(&[u8], &[u8])> = vec![(b"", header.as_slice())];
    kv.extend(
        entries
            .iter()
            .zip(&values)
            .map(|((k, _), v)| (k.as_bytes(), v.as_slice())),
    );
    let mut table = Table::default();
    let data = table.push(&plain_block(&kv), 0);
    table.finish(&[data])
}

/// A header naming `num_shards` data shards.
pub fn header(num_shards: i32) -> tf::BundleHeaderProto {
    tf::BundleHeaderProto {
        num_shards,
        ..Default::default()
    }
}
