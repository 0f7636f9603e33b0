//! The one place that turns small metadata records into bytes and back (bincode 2, pinned
//! `=2.0.1`: the crate is unmaintained and 3.0.0 is a tombstone). Every encoded record starts with
//! a format version byte so that the encoding can change, or bincode be swapped, later.

use anyhow::Context;

use crate::Result;
use crate::error::damaged;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Version of the record encoding written by [`encode`].
pub const CODEC_VERSION: u8 = 1;

/// The most memory decoding one record may claim. Records are small (a key map's metadata,
/// an index configuration); a larger claim comes from a damaged length field.
const MAX_RECORD_BYTES: usize = 1 << 20;

/// Encodes a record: one version byte, then bincode's standard encoding.
pub fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>> {
    let mut out = vec![CODEC_VERSION];
    out.extend(bincode::serde::encode_to_vec(record, bincode::config::standard()).context("encoding a metadata record")?);
    Ok(out)
}

/// Decodes a record written by [`encode`]; rejects unknown versions and trailing bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let Some((&version, body)) = bytes.split_first() else { damaged!("empty metadata record") };
    if version != CODEC_VERSION {
        damaged!("metadata record has encoding version {version}, this build reads {CODEC_VERSION}");
    }
    // The limit bounds what a length field read from disk may make bincode allocate: without
    // it, one damaged length aborts the process ("memory allocation of … bytes failed").
    let config = bincode::config::standard().with_limit::<MAX_RECORD_BYTES>();
    let (record, used) = bincode::serde::decode_from_slice(body, config).context("decoding a metadata record")?;
    if used != body.len() {
        damaged!("metadata record has {} trailing bytes", body.len() - used);
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, PartialEq, Debug)]
    struct R {
        name: String,
        dim: usize,
    }

    #[test]
    fn round_trip_and_version_check() {
        let r = R { name: "e5".into(), dim: 384 };
        let bytes = encode(&r).unwrap();
        assert_eq!(decode::<R>(&bytes).unwrap(), r);
        let mut bad = bytes.clone();
        bad[0] = 99;
        assert!(decode::<R>(&bad).is_err());
        assert!(decode::<R>(&bytes[..bytes.len() - 1]).is_err());
    }

    /// Found by `fuzz_keymap_records`: a damaged string length made bincode allocate exabytes
    /// and abort the process. It is now an error.
    #[test]
    fn a_damaged_length_is_an_error_not_an_abort() {
        let mut bytes = vec![CODEC_VERSION];
        // varint: 0xfd then a u64 length of 2^62 for `name`.
        bytes.push(0xfd);
        bytes.extend_from_slice(&(1u64 << 62).to_le_bytes());
        bytes.extend_from_slice(b"e5");
        let err = decode::<R>(&bytes).unwrap_err();
        assert!(format!("{err:#}").contains("decoding a metadata record"), "{err:#}");
    }
}
