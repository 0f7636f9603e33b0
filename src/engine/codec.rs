//! The one place that turns small metadata records into bytes and back (bincode 2, pinned
//! `=2.0.1`: the crate is unmaintained and 3.0.0 is a tombstone). Every encoded record starts with
//! a format version byte so that the encoding can change, or bincode be swapped, later.

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Version of the record encoding written by [`encode`].
pub const CODEC_VERSION: u8 = 1;

/// Encodes a record: one version byte, then bincode's standard encoding.
pub fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>> {
    let mut out = vec![CODEC_VERSION];
    out.extend(bincode::serde::encode_to_vec(record, bincode::config::standard()).context("encoding a metadata record")?);
    Ok(out)
}

/// Decodes a record written by [`encode`]; rejects unknown versions and trailing bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let Some((&version, body)) = bytes.split_first() else { bail!("empty metadata record") };
    if version != CODEC_VERSION {
        bail!("metadata record has encoding version {version}, this build reads {CODEC_VERSION}");
    }
    let (record, used) = bincode::serde::decode_from_slice(body, bincode::config::standard())
        .context("decoding a metadata record")?;
    if used != body.len() {
        bail!("metadata record has {} trailing bytes", body.len() - used);
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
}
