//! LevelDB's masked CRC32C, the checksum TFRecord files (warmup requests) and tensor-bundle
//! tables (the variables index) store: a CRC of data that itself holds CRCs stays well
//! distributed once masked.

const MASK_DELTA: u32 = 0xa282_ead8;

/// The stored form of `crc`.
pub fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// The CRC a stored (masked) value stands for.
pub fn unmask(masked: u32) -> u32 {
    masked.wrapping_sub(MASK_DELTA).rotate_left(15)
}

/// The masked CRC32C of `data`, as stored beside it.
pub fn masked(data: &[u8]) -> u32 {
    mask(crc32c::crc32c(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_mask_round_trip() {
        for crc in [0u32, 1, 0xdead_beef, u32::MAX] {
            assert_eq!(unmask(mask(crc)), crc);
        }
    }
}
