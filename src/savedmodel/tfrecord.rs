//! TFRecord files (`assets.extra/tf_serving_warmup_requests`): each record is a little-endian
//! u64 length, the masked CRC32C of those 8 bytes, the data, and the masked CRC32C of the data.

use std::path::Path;

/// LevelDB/TFRecord CRC masking.
pub fn mask_crc(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Why a TFRecord file is not well formed; `record` counts from 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TfRecordError {
    #[error("record {record} is truncated at byte {offset}")]
    Truncated { record: usize, offset: usize },
    #[error("record {record} (byte {offset}) fails its length CRC32C check")]
    LengthCrc { record: usize, offset: usize },
    #[error("record {record} (byte {offset}) fails its data CRC32C check")]
    DataCrc { record: usize, offset: usize },
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Splits a TFRecord file into its records, checking lengths and both CRCs.
pub fn parse(bytes: &[u8]) -> Result<Vec<&[u8]>, TfRecordError> {
    let mut records = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let record = records.len();
        let truncated = TfRecordError::Truncated {
            record,
            offset: pos,
        };
        let header = bytes.get(pos..pos + 12).ok_or(truncated.clone())?;
        if mask_crc(crc32c::crc32c(&header[..8])) != le_u32(&header[8..12]) {
            return Err(TfRecordError::LengthCrc {
                record,
                offset: pos,
            });
        }
        let len = u64::from_le_bytes(header[..8].try_into().map_err(|_| truncated.clone())?);
        let len = usize::try_from(len).map_err(|_| truncated.clone())?;
        let start = pos + 12;
        let end = start.checked_add(len).ok_or(truncated.clone())?;
        let data = bytes.get(start..end).ok_or(truncated.clone())?;
        let crc = bytes.get(end..end + 4).ok_or(truncated)?;
        if mask_crc(crc32c::crc32c(data)) != le_u32(crc) {
            return Err(TfRecordError::DataCrc {
                record,
                offset: pos,
            });
        }
        records.push(data);
        pos = end + 4;
    }
    Ok(records)
}

/// Encodes records as a TFRecord file.
pub fn encode<'a>(records: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for data in records {
        let len = (data.len() as u64).to_le_bytes();
        out.extend_from_slice(&len);
        out.extend_from_slice(&mask_crc(crc32c::crc32c(&len)).to_le_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(&mask_crc(crc32c::crc32c(data)).to_le_bytes());
    }
    out
}

/// Reads and splits a TFRecord file.
pub fn read(path: &Path) -> std::io::Result<Result<Vec<Vec<u8>>, TfRecordError>> {
    let bytes = std::fs::read(path)?;
    Ok(parse(&bytes).map(|r| r.into_iter().map(<[u8]>::to_vec).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let file = encode([&b"abc"[..], b"", b"hello world"]);
        assert_eq!(
            parse(&file).unwrap(),
            vec![&b"abc"[..], b"", b"hello world"]
        );
        assert!(matches!(
            parse(&file[..file.len() - 1]),
            Err(TfRecordError::Truncated { record: 2, .. })
        ));
        let mut bad = file.clone();
        bad[13] ^= 1; // first data byte
        assert!(matches!(
            parse(&bad),
            Err(TfRecordError::DataCrc { record: 0, .. })
        ));
        let mut bad = file;
        bad[0] ^= 1; // first length byte
        assert!(matches!(
            parse(&bad),
            Err(TfRecordError::LengthCrc { record: 0, .. })
        ));
    }
}
