//! TFRecord files (`assets.extra/tf_serving_warmup_requests`): each record is a little-endian
//! u64 length, the masked CRC32C of those 8 bytes, the data, and the masked CRC32C of the data.

use std::io::Read;

use super::crc;

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
        if crc::masked(&header[..8]) != le_u32(&header[8..12]) {
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
        if crc::masked(data) != le_u32(crc) {
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
        out.extend_from_slice(&crc::masked(&len).to_le_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(&crc::masked(data).to_le_bytes());
    }
    out
}

/// Why [`Reader`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Format(#[from] TfRecordError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads the records of a TFRecord stream one at a time, so memory holds one record, not the
/// file. The stream's size is known up front (a file's length): a record whose length claims
/// more than the bytes left is truncated, found before anything is allocated for it.
pub struct Reader<R> {
    input: std::io::Take<R>,
    left: u64,
    offset: usize,
    record: usize,
}

impl<R: Read> Reader<R> {
    /// Reads at most `size` bytes of `input`.
    pub fn new(input: R, size: u64) -> Self {
        Reader {
            input: input.take(size),
            left: size,
            offset: 0,
            record: 0,
        }
    }

    /// The next record; `Ok(None)` at the end of the stream.
    pub fn next_record(&mut self) -> Result<Option<Vec<u8>>, ReadError> {
        if self.left == 0 {
            return Ok(None);
        }
        let (record, offset) = (self.record, self.offset);
        let truncated = TfRecordError::Truncated { record, offset };
        let fill = |input: &mut std::io::Take<R>, buf: &mut [u8]| match input.read_exact(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(ReadError::Format(truncated.clone()))
            }
            other => other.map_err(ReadError::Io),
        };
        let mut header = [0u8; 12];
        fill(&mut self.input, &mut header)?;
        if crc::masked(&header[..8]) != le_u32(&header[8..12]) {
            return Err(TfRecordError::LengthCrc { record, offset }.into());
        }
        let mut len8 = [0u8; 8];
        len8.copy_from_slice(&header[..8]);
        let len = u64::from_le_bytes(len8);
        let needed = len.checked_add(16).ok_or(truncated.clone())?;
        if needed > self.left {
            return Err(truncated.into());
        }
        let mut data = vec![0u8; usize::try_from(len).map_err(|_| truncated.clone())?];
        fill(&mut self.input, &mut data)?;
        let mut crc = [0u8; 4];
        fill(&mut self.input, &mut crc)?;
        if crc::masked(&data) != le_u32(&crc) {
            return Err(TfRecordError::DataCrc { record, offset }.into());
        }
        self.left -= needed;
        self.offset = self.offset.saturating_add(needed as usize);
        self.record += 1;
        Ok(Some(data))
    }
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
        let mut bad = file.clone();
        bad[0] ^= 1; // first length byte
        assert!(matches!(
            parse(&bad),
            Err(TfRecordError::LengthCrc { record: 0, .. })
        ));
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<Vec<u8>>, ReadError> {
        let mut reader = Reader::new(bytes, bytes.len() as u64);
        let mut records = Vec::new();
        while let Some(r) = reader.next_record()? {
            records.push(r);
        }
        Ok(records)
    }

    #[test]
    fn reader_streams_the_records_parse_splits() {
        let file = encode([&b"abc"[..], b"", b"hello world"]);
        assert_eq!(
            read_all(&file).unwrap(),
            [b"abc".to_vec(), vec![], b"hello world".to_vec()]
        );
        // Records end at bytes 19 and 35; any other cut truncates one.
        for cut in (1..file.len()).filter(|c| ![19, 35].contains(c)) {
            let err = read_all(&file[..cut]).unwrap_err();
            assert!(
                matches!(err, ReadError::Format(TfRecordError::Truncated { .. })),
                "cut at {cut}: {err}"
            );
        }
        // A length claim far beyond the stream fails before any allocation for it.
        let huge = (u64::MAX - 3).to_le_bytes();
        let mut claim = huge.to_vec();
        claim.extend_from_slice(&crc::masked(&huge).to_le_bytes());
        assert!(matches!(
            read_all(&claim),
            Err(ReadError::Format(TfRecordError::Truncated {
                record: 0,
                offset: 0
            }))
        ));
        let mut bad = file;
        bad[13] ^= 1;
        assert!(matches!(
            read_all(&bad),
            Err(ReadError::Format(TfRecordError::DataCrc { record: 0, .. }))
        ));
    }
}
