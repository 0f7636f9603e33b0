//! Fuzz (property) tests of the two readers of this crate, vector segments and tombstone files:
//! arbitrary bytes and mutations of valid files always give `Ok` or an error naming the file,
//! never a panic; an unrepaired mutation is always detected; and what is written reads back.
//!
//! Mutations are tried twice: as they are (the checksum must catch them) and with the checksum
//! recomputed, as a writer with a bug would produce, so that the checks behind the checksum
//! (header fields, sizes, id order, scales) are fuzzed too. Case counts are small here and
//! raised by `scripts/fuzz.sh` through `$OPTICAL_FUZZ_CASES` (see `util/mutate.rs`).

mod util;
#[path = "util/mutate.rs"]
mod mutate;

use std::path::Path;

use mutate::{apply, bytes, cases, mutations};
use optical_storage::{ElemType, Segment, Tombstones};
use proptest::prelude::*;
use util::{Rng, rows_with_ids, write_segment};

const SEGMENT_MAGIC: &[u8] = b"OPTVSEG\0";
const TOMB_MAGIC: &[u8] = b"OPTTOMB\0";

/// Recomputes a segment file's crc32 (header bytes 0..60, then everything after the header).
fn fix_segment_crc(b: &mut [u8]) {
    if b.len() >= 64 {
        let mut h = crc32fast::Hasher::new();
        h.update(&b[..60]);
        h.update(&b[64..]);
        let crc = h.finalize();
        b[60..64].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Recomputes a tombstone file's trailing crc32.
fn fix_tomb_crc(b: &mut [u8]) {
    if b.len() >= 4 {
        let n = b.len() - 4;
        let crc = crc32fast::hash(&b[..n]);
        b[n..].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Uses every accessor of an opened segment: whatever `open` accepted must be safe to read.
fn exercise(seg: &Segment) {
    let ids = seg.ids().to_vec();
    assert_eq!(ids.len(), seg.len());
    let _ = (seg.id_range(), seg.info(), seg.scales().len());
    for row in 0..seg.len().min(4) {
        assert!(seg.row_vec(row).is_some_and(|v| v.len() == seg.dim()));
    }
    assert!(seg.row_vec(seg.len()).is_none());
    if let Some(&id) = ids.first() {
        assert!(seg.get(id).is_some());
    }
    let query = vec![0.5f32; seg.dim()];
    let hits = seg.top_k(&query, 3, &Tombstones::new()).expect("top_k with a query of the segment's dimension");
    assert!(hits.len() <= 3.min(seg.len()));
    assert!(seg.top_k(&[1.0; 1], 3, &Tombstones::new()).is_err() || seg.dim() == 1);
}

fn open_bytes(path: &Path, b: &[u8]) -> Option<Segment> {
    std::fs::write(path, b).unwrap();
    match Segment::open(path) {
        Ok(seg) => Some(seg),
        Err(e) => {
            assert!(e.to_string().contains(&path.display().to_string()), "error does not name the file: {e}");
            None
        }
    }
}

fn valid_segment(path: &Path, seed: u64, dim: usize, n: usize, int8: bool) -> Vec<(u64, Vec<f32>)> {
    let mut rng = Rng(seed);
    let rows = rows_with_ids(&mut rng, n, seed % 100, |r| r.unit_vec(dim));
    write_segment(path, dim, if int8 { ElemType::I8 } else { ElemType::F32 }, &rows);
    rows
}

proptest! {
    #![proptest_config(cases(48))]

    /// Arbitrary bytes, half of them behind a valid magic and version so that the header
    /// checks after those are reached.
    #[test]
    fn fuzz_segment_arbitrary_bytes(body in bytes(400), with_magic in any::<bool>(), fix in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.ovs");
        let mut b = Vec::new();
        if with_magic {
            b.extend_from_slice(SEGMENT_MAGIC);
            b.extend_from_slice(&1u32.to_le_bytes());
        }
        b.extend_from_slice(&body);
        if fix {
            fix_segment_crc(&mut b);
        }
        if let Some(seg) = open_bytes(&path, &b) {
            exercise(&seg);
        }
    }

    /// Mutations of a valid segment: detected unless the checksum is repaired, and never a panic.
    #[test]
    fn fuzz_segment_mutations(
        seed in any::<u64>(),
        dim in 1usize..20,
        n in 0usize..12,
        int8 in any::<bool>(),
        muts in mutations(4),
        fix in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.ovs");
        valid_segment(&path, seed, dim, n, int8);
        let good = std::fs::read(&path).unwrap();
        let mut b = apply(&good, &muts);
        if fix {
            fix_segment_crc(&mut b);
        }
        let opened = open_bytes(&path, &b);
        if b == good {
            prop_assert!(opened.is_some());
        } else if !fix {
            prop_assert!(opened.is_none(), "an unrepaired mutation of a segment went unnoticed");
        }
        if let Some(seg) = opened {
            exercise(&seg);
        }
    }

    /// What the writer writes reads back: same ids, f32 rows bit for bit, int8 rows within half
    /// a quantization step.
    #[test]
    fn fuzz_segment_round_trip(seed in any::<u64>(), dim in 1usize..40, n in 0usize..30, int8 in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.ovs");
        let rows = valid_segment(&path, seed, dim, n, int8);
        let seg = Segment::open(&path).unwrap();
        prop_assert_eq!(seg.ids().to_vec(), rows.iter().map(|r| r.0).collect::<Vec<_>>());
        for (id, v) in &rows {
            let got = seg.get(*id).unwrap();
            if int8 {
                let step = v.iter().fold(0f32, |m, x| m.max(x.abs())) / 127.0;
                prop_assert!(got.iter().zip(v).all(|(a, b)| (a - b).abs() <= step * 0.5 + 1e-6));
            } else {
                prop_assert_eq!(&got, v);
            }
        }
    }

    #[test]
    fn fuzz_tombstones_arbitrary_bytes(body in bytes(200), with_magic in any::<bool>(), fix in any::<bool>()) {
        let mut b = Vec::new();
        if with_magic {
            b.extend_from_slice(TOMB_MAGIC);
            b.extend_from_slice(&1u32.to_le_bytes());
        }
        b.extend_from_slice(&body);
        if fix {
            fix_tomb_crc(&mut b);
        }
        let path = Path::new("t.tomb");
        if let Err(e) = Tombstones::from_bytes(path, &b) {
            prop_assert!(e.to_string().contains("t.tomb"));
        }
    }

    /// Mutations of a valid tombstone file: detected unless the checksum is repaired; whatever is
    /// accepted is a strictly ascending id set that writes back to the same bytes.
    #[test]
    fn fuzz_tombstones_mutations(ids in prop::collection::btree_set(any::<u64>(), 0..20), muts in mutations(4), fix in any::<bool>()) {
        let good = ids.iter().copied().collect::<Tombstones>().to_bytes();
        let mut b = apply(&good, &muts);
        if fix {
            fix_tomb_crc(&mut b);
        }
        match Tombstones::from_bytes(Path::new("t.tomb"), &b) {
            Ok(t) => {
                prop_assert!(b == good || fix, "an unrepaired mutation of a tombstone file went unnoticed");
                prop_assert_eq!(t.to_bytes(), b);
            }
            Err(e) => {
                prop_assert!(b != good);
                prop_assert!(e.to_string().contains("t.tomb"));
            }
        }
    }

    #[test]
    fn fuzz_tombstones_round_trip(ids in prop::collection::btree_set(any::<u64>(), 0..200)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tomb");
        let t: Tombstones = ids.iter().copied().collect();
        t.write(&path).unwrap();
        let back = Tombstones::read(&path).unwrap();
        prop_assert_eq!(back.iter().collect::<Vec<_>>(), ids.into_iter().collect::<Vec<_>>());
    }
}
