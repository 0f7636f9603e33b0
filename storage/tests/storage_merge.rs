//! Merging segments on real files: live rows preserved, deleted rows dropped, ids ascending.

mod util;

use optical_storage::{ElemType, Segment, StorageError, Tombstones, merge_segments};
use util::{Rng, brute_force, write_segment};

/// Three inputs with interleaved ids (each ascending; the union is not a concatenation).
fn inputs(dir: &std::path::Path, elem: ElemType) -> (Vec<Segment>, Vec<(u64, Vec<f32>)>) {
    let mut rng = Rng(21);
    let mut all = Vec::new();
    let mut segs = Vec::new();
    for s in 0..3u64 {
        let rows: Vec<(u64, Vec<f32>)> =
            (0..400u64).map(|i| (i * 3 + s, rng.unit_vec(24))).collect();
        let path = dir.join(format!("in-{s}-{elem}.seg"));
        write_segment(&path, 24, elem, &rows);
        segs.push(Segment::open(&path).unwrap());
        all.extend(rows);
    }
    all.sort_by_key(|r| r.0);
    (segs, all)
}

#[test]
fn f32_merge_drops_deleted_and_preserves_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (segs, all) = inputs(dir.path(), ElemType::F32);
    let tomb: Tombstones = all.iter().map(|r| r.0).filter(|id| id % 7 == 0).collect();
    let out = dir.path().join("merged.seg");
    let info = merge_segments(&segs, &tomb, &out, ElemType::F32).unwrap();
    let live: Vec<_> = all
        .iter()
        .filter(|r| !tomb.contains(r.0))
        .cloned()
        .collect();
    assert_eq!(info.len, live.len());
    let m = Segment::open(&out).unwrap();
    assert_eq!(
        m.ids(),
        live.iter().map(|r| r.0).collect::<Vec<_>>(),
        "all live ids, ascending"
    );
    for (id, v) in &live {
        assert_eq!(m.get(*id).as_ref(), Some(v), "row {id} copied exactly");
    }
    for id in tomb.iter() {
        assert_eq!(m.get(id), None, "deleted {id} dropped");
    }
    // Searching the merged segment without tombstones equals searching the inputs with them.
    let q = Rng(5).unit_vec(24);
    let empty = Tombstones::new();
    assert_eq!(
        m.top_k(&q, 20, &empty).unwrap(),
        optical_storage::top_k_segments(&segs, &q, 20, &tomb).unwrap()
    );
    assert_eq!(
        m.top_k(&q, 20, &empty)
            .unwrap()
            .iter()
            .map(|h| h.id)
            .collect::<Vec<_>>(),
        brute_force(&all, &q, 20, &tomb)
            .iter()
            .map(|h| h.id)
            .collect::<Vec<_>>()
    );
}

#[test]
fn f32_to_i8_quantizes_like_a_direct_write_and_i8_to_i8_copies() {
    let dir = tempfile::tempdir().unwrap();
    let (segs, all) = inputs(dir.path(), ElemType::F32);
    let tomb: Tombstones = [0, 5, 1000].into_iter().collect();
    let live: Vec<_> = all
        .iter()
        .filter(|r| !tomb.contains(r.0))
        .cloned()
        .collect();

    let q_merged = dir.path().join("q-merged.seg");
    merge_segments(&segs, &tomb, &q_merged, ElemType::I8).unwrap();
    let q_direct = dir.path().join("q-direct.seg");
    write_segment(&q_direct, 24, ElemType::I8, &live);
    // Same rows, same quantization: the files are byte-identical.
    assert_eq!(
        std::fs::read(&q_merged).unwrap(),
        std::fs::read(&q_direct).unwrap()
    );

    // int8 → int8 copies quantized rows and scales unchanged (no re-quantization drift).
    let qseg = Segment::open(&q_merged).unwrap();
    let tomb2: Tombstones = [3, 4].into_iter().collect();
    let q2 = dir.path().join("q2.seg");
    merge_segments(std::slice::from_ref(&qseg), &tomb2, &q2, ElemType::I8).unwrap();
    let q2 = Segment::open(&q2).unwrap();
    assert_eq!(q2.len(), qseg.len() - 2);
    for (row, &id) in q2.ids().iter().enumerate() {
        assert_eq!(q2.row_i8(row), qseg.row_i8(qseg.row_of(id).unwrap()));
    }
    // int8 → f32 dequantizes.
    let f = dir.path().join("f.seg");
    merge_segments(
        std::slice::from_ref(&qseg),
        &Tombstones::new(),
        &f,
        ElemType::F32,
    )
    .unwrap();
    let f = Segment::open(&f).unwrap();
    for &id in qseg.ids().iter().take(50) {
        assert_eq!(f.get(id), qseg.get(id));
    }
}

#[test]
fn merge_errors_and_empty_output() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.seg");
    let b = dir.path().join("b.seg");
    let c = dir.path().join("c.seg");
    write_segment(
        &a,
        2,
        ElemType::F32,
        &[(1, vec![1.0, 0.0]), (3, vec![0.0, 1.0])],
    );
    write_segment(&b, 2, ElemType::F32, &[(3, vec![1.0, 1.0])]);
    write_segment(&c, 3, ElemType::F32, &[(9, vec![1.0, 1.0, 1.0])]);
    let (sa, sb, sc) = (
        Segment::open(&a).unwrap(),
        Segment::open(&b).unwrap(),
        Segment::open(&c).unwrap(),
    );
    let out = dir.path().join("out.seg");
    let none = Tombstones::new();

    let err = merge_segments(
        &[Segment::open(&a).unwrap(), sb],
        &none,
        &out,
        ElemType::F32,
    )
    .unwrap_err();
    assert!(
        matches!(err, StorageError::NonAscendingId { prev: 3, id: 3, .. }),
        "duplicate id across inputs: {err}"
    );
    assert!(
        !out.exists() && !dir.path().join("out.seg.tmp").exists(),
        "failed merge leaves nothing behind"
    );

    let err = merge_segments(
        &[Segment::open(&a).unwrap(), sc],
        &none,
        &out,
        ElemType::F32,
    )
    .unwrap_err();
    assert!(matches!(err, StorageError::DimMismatch { .. }));
    assert_eq!(err.path(), c);
    assert!(merge_segments::<Segment>(&[], &none, &out, ElemType::F32).is_err());

    let all: Tombstones = [1, 3].into_iter().collect();
    let info = merge_segments(&[sa], &all, &out, ElemType::F32).unwrap();
    assert_eq!(info.len, 0);
    assert!(Segment::open(&out).unwrap().is_empty());
}
