//! `engine::merge_indexes`: shards merged into one index hold what one index of the same
//! documents holds (documents, vectors bit for bit, search results), and a merge that cannot
//! finish leaves no output.
mod common;

use std::path::{Path, PathBuf};

use optical::Error;
use optical::engine::{Document, Index, IndexConfig, merge_indexes};
use optical::search::{Mode, SearchRequest, Searcher};

const DIM: usize = 8;

fn doc(i: usize) -> Document {
    let words = ["river", "city", "football", "capital", "university", "market", "rain", "music"];
    let body = format!("Document {i} about the {} and the {} of place {}.", words[i % 8], words[(i * 3) % 8], i % 7);
    let lang = if i % 5 == 0 { "hau" } else { "eng" };
    Document::new(format!("d{i:03}"), body).with_title(format!("Title {}", i % 11)).with_lang(lang).with_vector(common::hashed_vector(&format!("d{i}"), DIM))
}

fn build(dir: &Path, docs: impl IntoIterator<Item = Document>) {
    let index = Index::create(dir, IndexConfig::with_vectors(DIM)).unwrap();
    let mut w = index.writer().unwrap();
    w.add_batch(docs).unwrap();
    w.commit().unwrap();
}

#[test]
fn merged_shards_equal_one_index() {
    let tmp = tempfile::tempdir().unwrap();
    let single = tmp.path().join("single");
    build(&single, (0..60).map(doc));
    let shards: Vec<PathBuf> = (0..3).map(|s| tmp.path().join(format!("shard-{s}"))).collect();
    for (s, dir) in shards.iter().enumerate() {
        build(dir, (0..60).filter(|i| i % 3 == s).map(doc));
    }
    let out = tmp.path().join("merged");
    let report = merge_indexes(&out, &shards).unwrap();
    assert_eq!((report.docs, report.per_shard.clone()), (60, vec![20, 20, 20]));
    assert!(!tmp.path().join("merged.merging").exists());

    let (a, b) = (Index::open_read_only(&single).unwrap(), Index::open_read_only(&out).unwrap());
    let (sa, sb) = (a.snapshot(), b.snapshot());
    let mut keys: Vec<String> = sa.keys().unwrap().into_iter().map(|(k, _)| k).collect();
    keys.sort();
    let mut merged_keys: Vec<String> = sb.keys().unwrap().into_iter().map(|(k, _)| k).collect();
    merged_keys.sort();
    assert_eq!(keys, merged_keys);
    for k in &keys {
        let (da, db) = (sa.document_by_key(k).unwrap().unwrap(), sb.document_by_key(k).unwrap().unwrap());
        assert_eq!((&da.title, &da.body, &da.lang), (&db.title, &db.body, &db.lang));
        assert_eq!(sa.vector(da.id).unwrap(), sb.vector(db.id).unwrap(), "{k}: the vector is copied bit for bit");
    }
    let (qa, qb) = (Searcher::new(sa), Searcher::new(sb));
    for q in ["football capital", "river market place 3", "university music"] {
        for req in [
            SearchRequest::new(q).with_mode(Mode::Bm25),
            SearchRequest::new(q).with_mode(Mode::Dense).with_query_vector(common::hashed_vector(q, DIM)),
            SearchRequest::new(q).with_mode(Mode::Hybrid).with_query_vector(common::hashed_vector(q, DIM)),
        ] {
            let ha: Vec<(String, f32)> = qa.search(&req).unwrap().hits.into_iter().map(|h| (h.key, h.score)).collect();
            let hb: Vec<(String, f32)> = qb.search(&req).unwrap().hits.into_iter().map(|h| (h.key, h.score)).collect();
            assert_eq!(ha.len(), 10);
            assert_same_ranking(&ha, &hb, &format!("{:?} {q}", req.mode));
        }
    }
    // The output exists now: a second merge into it is refused.
    assert!(matches!(merge_indexes(&out, &shards), Err(Error::AlreadyExists { .. })));
}

/// The same scores rank by rank, and the same documents above the last score. Documents that
/// tie are ordered by their position in the index, which a merge changes (the shards' documents
/// come one shard after the other), so a tie at the cut may keep other documents.
fn assert_same_ranking(a: &[(String, f32)], b: &[(String, f32)], what: &str) {
    let close = |x: f32, y: f32| (x - y).abs() <= 1e-5 * x.abs().max(1.0);
    assert_eq!(a.len(), b.len(), "{what}");
    for (x, y) in a.iter().zip(b) {
        assert!(close(x.1, y.1), "{what}: {} {} vs {} {}", x.0, x.1, y.0, y.1);
    }
    let last = a.last().unwrap().1;
    let above = |hits: &[(String, f32)]| {
        let mut keys: Vec<String> = hits.iter().filter(|h| !close(h.1, last)).map(|h| h.0.clone()).collect();
        keys.sort();
        keys
    };
    assert_eq!(above(a), above(b), "{what}");
}

#[test]
fn a_failed_merge_leaves_no_output() {
    let tmp = tempfile::tempdir().unwrap();
    let (s0, s1) = (tmp.path().join("s0"), tmp.path().join("s1"));
    build(&s0, (0..5).map(doc));
    build(&s1, (4..9).map(doc)); // d004 is in both
    let out = tmp.path().join("merged");
    let err = merge_indexes(&out, &[s0.clone(), s1.clone()]).unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }) && err.to_string().contains("d004"), "{err}");
    assert!(!out.exists() && !tmp.path().join("merged.merging").exists());

    let text_only = tmp.path().join("t");
    Index::create(&text_only, IndexConfig::text_only()).unwrap();
    let err = merge_indexes(&out, &[s0, text_only]).unwrap_err();
    assert!(err.to_string().contains("share one configuration"), "{err}");
    assert!(!out.exists());
}
