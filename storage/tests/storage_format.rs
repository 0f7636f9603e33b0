//! On-disk behaviour with real files: round trips, writer rules, and that every kind of
//! damage (truncation, bit flips, wrong magic/version) is an error naming the file.

mod util;

use std::path::{Path, PathBuf};

use optical_storage::{ElemType, Segment, SegmentWriter, StorageError, Tombstones, quantize_i8};
use proptest::prelude::*;
use util::{Rng, rows_with_ids, write_segment};

fn assert_names(err: &StorageError, path: &Path) {
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "error does not name {}: {msg}", path.display());
    assert_eq!(err.path(), path);
}

#[test]
fn f32_round_trip_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.seg");
    let mut rng = Rng(1);
    // dim 37: rows are not a multiple of 64 bytes, so block padding is exercised.
    let rows = rows_with_ids(&mut rng, 300, 10, |r| (0..37).map(|_| r.normal() * 3.0).collect());
    let info = write_segment(&path, 37, ElemType::F32, &rows);
    assert_eq!(info.len, 300);
    assert_eq!(info.id_range, Some((rows[0].0, rows[299].0)));
    assert!(!dir.path().join("a.seg.tmp").exists());

    let seg = Segment::open(&path).unwrap();
    assert_eq!((seg.dim(), seg.len(), seg.elem_type()), (37, 300, ElemType::F32));
    assert_eq!(seg.path(), path);
    assert_eq!(seg.info(), info);
    assert_eq!(seg.file_len(), std::fs::metadata(&path).unwrap().len());
    assert_eq!(seg.ids(), rows.iter().map(|r| r.0).collect::<Vec<_>>());
    for (row, (id, v)) in rows.iter().enumerate() {
        assert_eq!(seg.get(*id).as_deref(), Some(v.as_slice()), "id {id}");
        assert_eq!(seg.row_f32(row), Some(v.as_slice()));
        // Bit-exact, not just equal as floats.
        assert!(seg.get(*id).unwrap().iter().zip(v).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
    // Ids in the gaps and outside the range are absent.
    assert_eq!(seg.get(0), None);
    assert_eq!(seg.get(rows[0].0 + 1).is_some(), rows[1].0 == rows[0].0 + 1);
    assert_eq!(seg.get(u64::MAX), None);
    assert_eq!(seg.row_f32(300), None);
    assert!(seg.vectors_i8().is_none());
    // The vector block is 64-byte aligned in memory.
    assert_eq!(seg.vectors_f32().unwrap().as_ptr() as usize % 64, 0);
}

/// Stated bound: per element |x − scale·q| ≤ scale/2 (+1e-6 relative float slack), with
/// scale = max|x|/127; for an L2-normalised vector that is ≤ 1/254 per element.
#[test]
fn i8_round_trip_within_quantization_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.seg");
    let mut rng = Rng(2);
    let mut rows = rows_with_ids(&mut rng, 200, 0, |r| r.unit_vec(45));
    rows.push((10_000, vec![0.0; 45])); // all-zero row: scale 0, exact
    write_segment(&path, 45, ElemType::I8, &rows);
    let seg = Segment::open(&path).unwrap();
    assert_eq!(seg.elem_type(), ElemType::I8);
    assert_eq!(seg.vectors_i8().unwrap().as_ptr() as usize % 64, 0);
    assert_eq!(seg.scales().as_ptr() as usize % 64, 0);
    for (row, (id, v)) in rows.iter().enumerate() {
        let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
        let (q, scale) = seg.row_i8(row).unwrap();
        assert_eq!(scale, max / 127.0);
        assert!(q.iter().all(|&x| x != i8::MIN));
        let got = seg.get(*id).unwrap();
        for (a, b) in got.iter().zip(v) {
            assert!((a - b).abs() <= 0.5 * scale * (1.0 + 1e-5) + 1e-7, "id {id}: {a} vs {b} (scale {scale})");
            assert!((a - b).abs() <= 1.0 / 254.0 + 1e-6);
        }
        // The stored row is exactly what the public quantizer produces.
        let mut expect = vec![0i8; v.len()];
        assert_eq!(quantize_i8(v, &mut expect), scale);
        assert_eq!(q, expect.as_slice());
    }
}

#[test]
fn empty_segment_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    for elem in [ElemType::F32, ElemType::I8] {
        let path = dir.path().join(format!("empty-{elem}.seg"));
        let info = SegmentWriter::create(&path, 8, elem).unwrap().finish().unwrap();
        assert_eq!((info.len, info.id_range, info.file_len), (0, None, 64));
        let seg = Segment::open(&path).unwrap();
        assert!(seg.is_empty());
        assert_eq!(seg.ids(), &[] as &[u64]);
        assert_eq!(seg.get(0), None);
        assert!(seg.top_k(&[0.5; 8], 10, &Tombstones::new()).unwrap().is_empty());
    }
}

#[test]
fn writer_rejects_bad_input_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.seg");
    let tmp = dir.path().join("w.seg.tmp");
    let mut w = SegmentWriter::create(&path, 3, ElemType::F32).unwrap();
    w.push(5, &[1.0, 2.0, 3.0]).unwrap();
    for bad in [5, 4, 0] {
        let err = w.push(bad, &[1.0, 2.0, 3.0]).unwrap_err();
        assert!(matches!(err, StorageError::NonAscendingId { prev: 5, id, .. } if id == bad), "{err}");
        assert_names(&err, &path);
    }
    let err = w.push(6, &[1.0, 2.0]).unwrap_err();
    assert!(matches!(err, StorageError::DimMismatch { expected: 3, found: 2, .. }), "{err}");
    let err = w.push(6, &[1.0, f32::NAN, 0.0]).unwrap_err();
    assert!(matches!(err, StorageError::InvalidInput { .. }), "{err}");
    assert_names(&err, &path);
    let err = w.push_i8(6, &[1, 2, 3], 0.1).unwrap_err();
    assert!(matches!(err, StorageError::InvalidInput { .. }), "{err}");
    // Rejected pushes did not disturb the writer.
    w.push(7, &[4.0, 5.0, 6.0]).unwrap();
    assert!(tmp.exists() && !path.exists(), "only the tmp file exists before finish");
    drop(w);
    assert!(!tmp.exists() && !path.exists(), "an abandoned writer removes its tmp file");

    for dim in [0, optical_storage::MAX_DIM + 1] {
        let err = SegmentWriter::create(&path, dim, ElemType::F32).err().expect("bad dim rejected");
        assert_names(&err, &path);
    }
    let mut w = SegmentWriter::create(&path, 2, ElemType::I8).unwrap();
    w.push_i8(1, &[127, -127], 0.5).unwrap();
    assert!(w.push_i8(2, &[1, 1], f32::INFINITY).is_err());
    assert!(w.push_i8(2, &[1, 1], -1.0).is_err());
    w.finish().unwrap();
    assert_eq!(Segment::open(&path).unwrap().get(1).unwrap(), vec![63.5, -63.5]);
}

#[test]
fn finish_replaces_an_existing_file_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.seg");
    write_segment(&path, 2, ElemType::F32, &[(1, vec![1.0, 0.0])]);
    let old = Segment::open(&path).unwrap();
    write_segment(&path, 2, ElemType::F32, &[(2, vec![0.0, 1.0])]);
    // The old mapping still sees the old (renamed-over) file; a fresh open sees the new one.
    assert_eq!(old.ids(), &[1]);
    assert_eq!(Segment::open(&path).unwrap().ids(), &[2]);
}

fn sample_files(dir: &Path) -> Vec<PathBuf> {
    let mut rng = Rng(3);
    let mut out = Vec::new();
    for (elem, dim, n) in [(ElemType::F32, 5, 7), (ElemType::I8, 9, 6)] {
        let path = dir.join(format!("s-{elem}.seg"));
        let rows = rows_with_ids(&mut rng, n, 100, |r| r.unit_vec(dim));
        write_segment(&path, dim, elem, &rows);
        out.push(path);
    }
    out
}

/// Every truncation length and every single-bit flip of small f32 and int8 segments is
/// detected, with an error naming the file (CRC-32 detects all single-bit errors; the layout
/// checks catch the rest first).
#[test]
fn every_truncation_and_bit_flip_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for src in sample_files(dir.path()) {
        let good = std::fs::read(&src).unwrap();
        let bad = dir.path().join("bad.seg");
        for len in 0..good.len() {
            std::fs::write(&bad, &good[..len]).unwrap();
            let err = Segment::open(&bad).expect_err(&format!("truncation to {len} accepted"));
            assert_names(&err, &bad);
        }
        let mut extended = good.clone();
        extended.push(0);
        std::fs::write(&bad, &extended).unwrap();
        assert_names(&Segment::open(&bad).unwrap_err(), &bad);
        for byte in 0..good.len() {
            for bit in 0..8 {
                let mut b = good.clone();
                b[byte] ^= 1 << bit;
                std::fs::write(&bad, &b).unwrap();
                let err = Segment::open(&bad).expect_err(&format!("flip of byte {byte} bit {bit} accepted"));
                assert_names(&err, &bad);
            }
        }
        std::fs::write(&bad, &good).unwrap();
        Segment::open(&bad).expect("the pristine copy opens");
    }
}

/// Rewrite header field bytes and fix up the checksum so the intended check, not the crc,
/// is what rejects the file.
fn with_valid_crc(mut b: Vec<u8>) -> Vec<u8> {
    let mut h = crc32fast::Hasher::new();
    h.update(&b[..60]);
    h.update(&b[64..]);
    let crc = h.finalize();
    b[60..64].copy_from_slice(&crc.to_le_bytes());
    b
}

#[test]
fn wrong_magic_version_and_fields_are_specific_errors() {
    let dir = tempfile::tempdir().unwrap();
    let src = &sample_files(dir.path())[0];
    let good = std::fs::read(src).unwrap();
    let bad = dir.path().join("bad.seg");
    let open_with = |b: Vec<u8>| {
        std::fs::write(&bad, b).unwrap();
        let err = Segment::open(&bad).unwrap_err();
        assert_names(&err, &bad);
        err
    };
    let mut b = good.clone();
    b[0..8].copy_from_slice(b"OPTTOMB\0");
    assert!(matches!(open_with(b), StorageError::BadMagic { .. }));
    assert!(matches!(open_with(b"hello".to_vec()), StorageError::BadMagic { .. }));
    assert!(matches!(open_with(Vec::new()), StorageError::BadMagic { .. }));

    let mut b = good.clone();
    b[8..12].copy_from_slice(&2u32.to_le_bytes());
    assert!(matches!(open_with(with_valid_crc(b)), StorageError::UnsupportedVersion { found: 2, supported: 1, .. }));

    for (off, val) in [(12usize, 7u32), (16, 0), (16, 1 << 20), (20, 1), (56, 1)] {
        let mut b = good.clone();
        b[off..off + 4].copy_from_slice(&val.to_le_bytes());
        assert!(matches!(open_with(with_valid_crc(b)), StorageError::Corrupt { .. }), "field at {off} = {val}");
    }
    // A huge row count must not overflow or allocate: it is a size error.
    let mut b = good.clone();
    b[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(open_with(with_valid_crc(b)), StorageError::Corrupt { .. }));
    // A wrong stored offset is rejected even when the size works out.
    let mut b = good.clone();
    b[48..56].copy_from_slice(&128u64.to_le_bytes());
    assert!(matches!(open_with(with_valid_crc(b)), StorageError::Corrupt { .. }));
    // Body damage behind an intact header is a checksum error.
    let mut b = good.clone();
    b[70] ^= 0x10;
    assert!(matches!(open_with(b), StorageError::ChecksumMismatch { .. }));

    let missing = dir.path().join("missing.seg");
    let err = Segment::open(&missing).unwrap_err();
    assert!(matches!(err, StorageError::Io { .. }));
    assert_names(&err, &missing);
}

#[test]
fn non_ascending_ids_on_disk_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ids.seg");
    write_segment(&path, 4, ElemType::F32, &[(1, vec![0.0; 4]), (2, vec![0.0; 4]), (3, vec![0.0; 4])]);
    let mut b = std::fs::read(&path).unwrap();
    let ids_off = u64::from_le_bytes(b[48..56].try_into().unwrap()) as usize;
    b[ids_off + 8..ids_off + 16].copy_from_slice(&1u64.to_le_bytes()); // ids 1, 1, 3
    std::fs::write(&path, with_valid_crc(b)).unwrap();
    let err = Segment::open(&path).unwrap_err();
    assert!(matches!(err, StorageError::NonAscendingId { prev: 1, id: 1, .. }), "{err}");
    assert_names(&err, &path);
}

#[test]
fn tombstones_round_trip_and_reject_damage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.tomb");
    let mut t = Tombstones::new();
    assert!(t.insert(42) && t.insert(7) && t.insert(u64::MAX) && !t.insert(7));
    assert_eq!(t.len(), 3);
    assert!(t.contains(42) && !t.contains(43));
    t.write(&path).unwrap();
    assert!(!dir.path().join("t.tomb.tmp").exists());
    let back = Tombstones::read(&path).unwrap();
    assert_eq!(back, t);
    assert_eq!(back.iter().collect::<Vec<_>>(), vec![7, 42, u64::MAX]);

    Tombstones::new().write(&path).unwrap();
    assert!(Tombstones::read(&path).unwrap().is_empty());

    t.write(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    let bad = dir.path().join("bad.tomb");
    for len in 0..good.len() {
        std::fs::write(&bad, &good[..len]).unwrap();
        assert_names(&Tombstones::read(&bad).expect_err(&format!("truncation to {len}")), &bad);
    }
    for byte in 0..good.len() {
        for bit in 0..8 {
            let mut b = good.clone();
            b[byte] ^= 1 << bit;
            std::fs::write(&bad, &b).unwrap();
            assert_names(&Tombstones::read(&bad).expect_err(&format!("flip {byte}:{bit}")), &bad);
        }
    }
    let mut b = good.clone();
    b[8..12].copy_from_slice(&9u32.to_le_bytes());
    let n = b.len() - 4;
    let crc = crc32fast::hash(&b[..n]);
    b[n..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&bad, &b).unwrap();
    assert!(matches!(Tombstones::read(&bad).unwrap_err(), StorageError::UnsupportedVersion { found: 9, .. }));
    // A segment file is not a tombstone file, and vice versa.
    let seg = dir.path().join("x.seg");
    write_segment(&seg, 2, ElemType::F32, &[(1, vec![1.0, 1.0])]);
    assert!(matches!(Tombstones::read(&seg).unwrap_err(), StorageError::BadMagic { kind: "tombstone", .. }));
    assert!(matches!(Segment::open(&path).unwrap_err(), StorageError::BadMagic { kind: "vector segment", .. }));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random segments (shape, element type) damaged at random positions: a truncation or a
    /// bit flip anywhere is always an error that names the file, never a panic.
    #[test]
    fn random_damage_is_always_detected(
        seed in any::<u64>(),
        dim in 1usize..70,
        n in 0usize..40,
        int8 in any::<bool>(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.seg");
        let mut rng = Rng(seed);
        let rows = rows_with_ids(&mut rng, n, seed % 1000, |r| r.unit_vec(dim));
        let elem = if int8 { ElemType::I8 } else { ElemType::F32 };
        write_segment(&path, dim, elem, &rows);
        let good = std::fs::read(&path).unwrap();
        prop_assert!(Segment::open(&path).is_ok());

        let len = cut.index(good.len());
        std::fs::write(&path, &good[..len]).unwrap();
        let err = Segment::open(&path).unwrap_err();
        prop_assert!(err.to_string().contains(&path.display().to_string()));

        let mut b = good.clone();
        b[flip.index(good.len())] ^= 1 << bit;
        std::fs::write(&path, &b).unwrap();
        let err = Segment::open(&path).unwrap_err();
        prop_assert!(err.to_string().contains(&path.display().to_string()));
    }
}
