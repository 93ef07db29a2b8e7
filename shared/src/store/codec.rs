//! How bytes are packed into items: compressed past a size where that saves write units, and cut
//! into chunks that each fit in one item with room to spare, whatever their size. Pure.

use crate::error::{Error, Result};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};

/// Bytes above this are compressed (a DynamoDB write unit is 1 KB; small values stay readable).
pub const COMPRESS_ABOVE: usize = 16 * 1024;
/// Bytes of packed data per item: DynamoDB's limit is 400 KB per item, attribute names and keys
/// included, and the rest of an item here is a few hundred bytes.
pub const CHUNK_BYTES: usize = 350 * 1024;

/// How packed bytes are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Raw,
    Gzip,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Gzip => "gzip",
        }
    }

    /// The stored name; absent (older items) means raw.
    pub fn parse(name: Option<&str>) -> Result<Self> {
        match name {
            None | Some("raw") => Ok(Self::Raw),
            Some("gzip") => Ok(Self::Gzip),
            Some(other) => Err(Error::Internal(format!(
                "stored data has an unknown encoding `{other}`"
            ))),
        }
    }
}

/// Bytes ready to be stored: encoded, then cut into chunks of at most [`CHUNK_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    pub encoding: Encoding,
    pub chunks: Vec<Vec<u8>>,
}

impl Packed {
    /// Compresses when larger than [`COMPRESS_ABOVE`], then cuts.
    pub fn new(bytes: &[u8]) -> Self {
        let (encoding, encoded) = if bytes.len() > COMPRESS_ABOVE {
            (Encoding::Gzip, gzip(bytes))
        } else {
            (Encoding::Raw, bytes.to_vec())
        };
        let chunks = if encoded.is_empty() {
            vec![Vec::new()]
        } else {
            encoded.chunks(CHUNK_BYTES).map(<[u8]>::to_vec).collect()
        };
        Self { encoding, chunks }
    }

    pub fn len(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The original bytes of stored chunks, in order.
pub fn unpack<'a>(
    encoding: Encoding,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>> {
    let mut joined = Vec::new();
    for chunk in chunks {
        joined.extend_from_slice(chunk);
    }
    match encoding {
        Encoding::Raw => Ok(joined),
        Encoding::Gzip => {
            let mut out = Vec::with_capacity(joined.len() * 4);
            GzDecoder::new(joined.as_slice())
                .read_to_end(&mut out)
                .map_err(|e| Error::Internal(format!("stored data does not decompress: {e}")))?;
            Ok(out)
        }
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::fast());
    // Writing to a Vec cannot fail.
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .unwrap_or_default()
}

/// A content name: 128 bits of SHA-256, hex. Items named by it are written once per content.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..16])
}

/// Incompressible bytes (xorshift), for the store's tests.
#[cfg(test)]
pub(crate) fn noise(len: usize) -> Vec<u8> {
    let mut seed = 7u64;
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_bytes_stay_as_they_are_and_large_ones_are_compressed_and_cut() {
        let small = Packed::new(b"{\"a\":1}");
        assert_eq!(small.encoding, Encoding::Raw);
        assert_eq!(small.chunks, vec![b"{\"a\":1}".to_vec()]);

        let large = Packed::new(&noise(1 << 20));
        assert_eq!(large.encoding, Encoding::Gzip);
        assert_eq!(large.chunks.len(), 3, "1 MiB of noise does not compress");
        assert!(large.chunks.iter().all(|c| c.len() <= CHUNK_BYTES));
        let back = unpack(large.encoding, large.chunks.iter().map(Vec::as_slice)).unwrap();
        assert_eq!(back, noise(1 << 20));
    }

    #[test]
    fn empty_bytes_pack_to_one_empty_chunk_and_back() {
        let packed = Packed::new(b"");
        assert_eq!(packed.chunks.len(), 1);
        assert!(packed.is_empty());
        assert!(unpack(Encoding::Raw, [&b""[..]]).unwrap().is_empty());
    }

    #[test]
    fn corrupt_compressed_data_is_an_error_not_a_panic() {
        assert!(unpack(Encoding::Gzip, [&b"not gzip"[..]]).is_err());
        assert!(Encoding::parse(Some("zstd")).is_err());
    }
}
