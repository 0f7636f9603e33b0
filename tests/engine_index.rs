//! Index directory tests with real files, real tantivy, real sled and real vector segments.
mod common;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use optical::engine::{Bm25Fields, Document, Index, IndexConfig, KeyMapState, VectorElem};

/// A deterministic pseudo-random unit vector for a key.
fn vector_for(key: &str, dim: usize) -> Vec<f32> {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100000001b3);
    }
    let mut v: Vec<f32> = (0..dim)
        .map(|_| {
            h = h.wrapping_add(0x9e3779b97f4a7c15);
            let mut z = h;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
            z ^= z >> 31;
            (z >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0
        })
        .collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

fn doc(key: &str, body: &str, dim: usize) -> Document {
    Document::new(key, body).with_lang("eng").with_vector(vector_for(key, dim))
}

const DIM: usize = 16;

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

#[test]
fn vectors_round_trip_through_commit_and_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let mut ids = HashMap::new();
    {
        let index = Index::create(&dir, IndexConfig::with_vectors(DIM)).unwrap();
        let mut w = index.writer().unwrap();
        for i in 0..100 {
            let key = format!("doc-{i}");
            let id = w.add(doc(&key, &format!("document number {i} about topic{}", i % 7), DIM)).unwrap();
            ids.insert(key, id);
        }
        // Not visible before the commit.
        assert_eq!(index.snapshot().num_docs(), 0);
        assert_eq!(index.snapshot().num_vectors(), 0);
        let info = w.commit().unwrap();
        assert_eq!(info.docs, 100);
        assert_eq!(info.generation, 1);
        let snap = index.snapshot();
        assert_eq!(snap.num_docs(), 100);
        assert_eq!(snap.num_vectors(), 100);
        for (key, &id) in &ids {
            assert_eq!(snap.vector(id).unwrap(), vector_for(key, DIM), "vector of {key}");
            assert_eq!(snap.id_of(key).unwrap(), Some(id));
        }
    }
    // Reopen from disk: same vectors, same ids, dense search finds each document by its vector.
    let index = Index::open(&dir).unwrap();
    assert_eq!(index.keymap_state(), Some(&KeyMapState::Current));
    let snap = index.snapshot();
    assert_eq!(snap.generation(), 1);
    for (key, &id) in &ids {
        let v = vector_for(key, DIM);
        assert_eq!(snap.vector(id).unwrap(), v);
        let top = common::dense(&snap, &v, 3).unwrap();
        assert_eq!(top[0].id, id, "dense top-1 for {key}");
        assert!((top[0].score - 1.0).abs() < 1e-5);
        assert_eq!(index.keymap_lookup(key).unwrap(), Some(id));
        let scored = snap.exact_scores(&v, &[id]).unwrap();
        assert!((scored[0].score - 1.0).abs() < 1e-5);
    }
    let hits = common::bm25(&snap, "topic3", 100, None).unwrap();
    assert_eq!(hits.len(), (0..100).filter(|i| i % 7 == 3).count());
    for h in &hits {
        assert_eq!(ids[&h.key], h.id);
    }
    let stored = snap.document_by_key("doc-5").unwrap().unwrap();
    assert_eq!(stored.body, "document number 5 about topic5");
    assert_eq!(stored.lang, "eng");
    // Wrong query dimension is an error, not a panic.
    assert!(common::dense(&snap, &[1.0; 3], 1).is_err());
}

#[test]
fn int8_index_round_trips_approximately() {
    let tmp = tempfile::tempdir().unwrap();
    let config = IndexConfig { dim: Some(DIM), elem: VectorElem::I8, encoder: None, token_codebook: None };
    let index = Index::create(tmp.path(), config).unwrap();
    let mut w = index.writer().unwrap();
    for i in 0..50 {
        w.add(doc(&format!("k{i}"), "text", DIM)).unwrap();
    }
    w.commit().unwrap();
    let snap = index.snapshot();
    for i in 0..50 {
        let key = format!("k{i}");
        let id = snap.id_of(&key).unwrap().unwrap();
        let (a, b) = (snap.vector(id).unwrap(), vector_for(&key, DIM));
        let cos: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum::<f32>()
            / (a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt());
        assert!(cos > 0.99, "int8 row of {key} has cosine {cos}");
        assert_eq!(common::dense(&snap, &b, 1).unwrap()[0].id, id);
    }
}

#[test]
fn deletes_and_upserts() {
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::create(tmp.path(), IndexConfig::with_vectors(DIM)).unwrap();
    let mut w = index.writer().unwrap();
    for i in 0..20 {
        w.add(doc(&format!("d{i}"), &format!("original text alpha{i}"), DIM)).unwrap();
    }
    w.commit().unwrap();
    let before = index.snapshot();
    let old3 = before.id_of("d3").unwrap().unwrap();
    let old4 = before.id_of("d4").unwrap().unwrap();

    // Adding an existing key is refused; delete of an unknown key reports false.
    assert!(w.add(doc("d1", "again", DIM)).is_err());
    assert!(!w.delete("nope").unwrap());
    assert!(w.delete("d3").unwrap());
    let new4 = w
        .upsert(Document::new("d4", "replacement text beta").with_lang("eng").with_vector(vector_for("d4-v2", DIM)))
        .unwrap();
    assert_ne!(new4, old4);
    // A document added and deleted in the same batch never appears.
    w.add(doc("tmp", "ephemeral gamma", DIM)).unwrap();
    assert!(w.delete("tmp").unwrap());
    // An upsert of a key added in this batch replaces the pending version.
    w.add(doc("d20", "first pending delta", DIM)).unwrap();
    let d20 = w.upsert(doc("d20", "second pending delta", DIM)).unwrap();

    // Nothing is visible until the commit: the old snapshot stays as it was.
    assert_eq!(index.snapshot().generation(), before.generation());
    assert_eq!(common::bm25(&before, "alpha3", 10, None).unwrap().len(), 1);

    let info = w.commit().unwrap();
    assert_eq!(info.docs, 20); // 20 - d3 + d20
    let snap = index.snapshot();
    assert_eq!(snap.num_docs(), snap.num_vectors());
    assert!(common::bm25(&snap, "alpha3", 10, None).unwrap().is_empty());
    assert!(common::bm25(&snap, "alpha4", 10, None).unwrap().is_empty());
    assert!(common::bm25(&snap, "gamma", 10, None).unwrap().is_empty());
    let beta = common::bm25(&snap, "beta", 10, None).unwrap();
    assert_eq!(beta.len(), 1);
    assert_eq!((beta[0].key.as_str(), beta[0].id), ("d4", new4));
    let delta = common::bm25(&snap, "delta", 10, None).unwrap();
    assert_eq!(delta.len(), 1);
    assert_eq!(delta[0].id, d20);
    assert_eq!(snap.document(d20).unwrap().unwrap().body, "second pending delta");
    // A batch read finds the same documents, through the `id` postings or at the BM25 hits'
    // addresses, and refuses an id without a live document.
    let ids = [d20, new4];
    let one_by_one: Vec<_> = ids.iter().map(|&id| snap.document(id).unwrap().unwrap()).collect();
    assert_eq!(snap.documents(&ids, &[]).unwrap(), one_by_one);
    let known = snap.bm25_candidates("delta", 10, None, Bm25Fields::default()).unwrap();
    assert!(known.iter().any(|h| h.id == d20));
    assert_eq!(snap.documents(&ids, &known).unwrap(), one_by_one);
    match snap.documents(&[d20, old3], &[]) {
        Err(optical::Error::Damaged { message, .. }) => assert!(message.contains(&format!("vector id {old3}")), "{message}"),
        other => panic!("expected Error::Damaged for a deleted id, got {other:?}"),
    }
    // The vector side agrees: old rows tombstoned, the new version has the new vector.
    assert_eq!(snap.vector(old3), None);
    assert_eq!(snap.vector(old4), None);
    assert_eq!(snap.vector(new4).unwrap(), vector_for("d4-v2", DIM));
    let top = common::dense(&snap, &vector_for("d4", DIM), 20).unwrap();
    assert!(top.iter().all(|h| h.id != old4 && h.id != old3), "a deleted row was returned");
    assert_eq!(common::dense(&snap, &vector_for("d4-v2", DIM), 1).unwrap()[0].id, new4);
    // The old snapshot still sees its own commit.
    assert_eq!(before.vector(old3).unwrap(), vector_for("d3", DIM));
    assert_eq!(common::bm25(&before, "alpha3", 10, None).unwrap().len(), 1);

    // sled followed the commit, and survives a reopen.
    drop(w);
    drop(before);
    drop(snap);
    drop(index);
    let index = Index::open(tmp.path()).unwrap();
    assert_eq!(index.keymap_state(), Some(&KeyMapState::Current));
    assert_eq!(index.keymap_lookup("d3").unwrap(), None);
    assert_eq!(index.keymap_lookup("d4").unwrap(), Some(new4));
    assert_eq!(index.keymap_lookup("tmp").unwrap(), None);
    assert_eq!(index.keymap_len(), Some(20));
    let snap = index.snapshot();
    assert_eq!(snap.num_docs(), 20);
    assert_eq!(snap.num_vectors(), 20);
}

#[test]
fn rollback_drops_pending_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::create(tmp.path(), IndexConfig::with_vectors(DIM)).unwrap();
    let mut w = index.writer().unwrap();
    w.add(doc("a", "kept", DIM)).unwrap();
    w.commit().unwrap();
    w.add(doc("b", "dropped", DIM)).unwrap();
    w.delete("a").unwrap();
    w.rollback().unwrap();
    assert_eq!(w.id_of("b").unwrap(), None);
    assert!(w.id_of("a").unwrap().is_some());
    w.add(doc("c", "after rollback", DIM)).unwrap();
    w.commit().unwrap();
    let snap = index.snapshot();
    assert_eq!(snap.num_docs(), 2);
    assert_eq!(snap.num_vectors(), 2);
    assert!(common::bm25(&snap, "dropped", 5, None).unwrap().is_empty());
    assert_eq!(common::bm25(&snap, "kept", 5, None).unwrap().len(), 1);
}

#[test]
fn validation_errors_name_the_document() {
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::create(tmp.path().join("v"), IndexConfig::with_vectors(DIM)).unwrap();
    let mut w = index.writer().unwrap();
    let e = w.add(Document::new("novec", "x")).unwrap_err().to_string();
    assert!(e.contains("novec") && e.contains("no vector"), "{e}");
    let e = w.add(Document::new("short", "x").with_vector(vec![1.0; 3])).unwrap_err().to_string();
    assert!(e.contains("short") && e.contains("dimension 3"), "{e}");
    let e = w.add(Document::new("nan", "x").with_vector(vec![f32::NAN; DIM])).unwrap_err().to_string();
    assert!(e.contains("non-finite"), "{e}");
    // A batch with one bad document adds nothing.
    assert!(w.add_batch(vec![doc("ok1", "x", DIM), Document::new("bad", "y")]).is_err());
    assert!(w.add_batch(vec![doc("dup", "x", DIM), doc("dup", "y", DIM)]).is_err());
    assert_eq!(w.pending(), 0);
    w.commit().unwrap();
    assert_eq!(index.snapshot().num_docs(), 0);

    let text = Index::create(tmp.path().join("t"), IndexConfig::text_only()).unwrap();
    let mut w = text.writer().unwrap();
    assert!(w.add(doc("v", "x", DIM)).is_err());
    w.add(Document::new("t1", "plain text only")).unwrap();
    w.commit().unwrap();
    let snap = text.snapshot();
    assert_eq!(snap.num_docs(), 1);
    assert_eq!(snap.num_vectors(), 0);
    assert!(common::dense(&snap, &[1.0; DIM], 1).is_err());
    assert_eq!(common::bm25(&snap, "plain", 1, None).unwrap()[0].key, "t1");
    // Creating over an existing index is refused.
    assert!(Index::create(tmp.path().join("t"), IndexConfig::text_only()).is_err());
}

#[test]
fn one_writer_at_a_time_readers_beside_it() {
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::create(tmp.path(), IndexConfig::with_vectors(DIM)).unwrap();
    // A second writable open of the same directory is refused while this one holds it.
    let e = Index::open(tmp.path()).err().expect("second open must fail").to_string();
    assert!(e.contains("open for writing"), "{e}");
    let mut w = index.writer().unwrap();
    assert!(index.writer().is_err());
    w.add(doc("x", "hello world", DIM)).unwrap();
    w.commit().unwrap();
    // A read-only handle sees the committed state and follows later commits on reload.
    let ro = Index::open_read_only(tmp.path()).unwrap();
    assert_eq!(ro.snapshot().num_docs(), 1);
    assert!(ro.writer().is_err());
    w.add(doc("y", "hello again", DIM)).unwrap();
    w.commit().unwrap();
    assert_eq!(ro.snapshot().num_docs(), 1);
    let s = ro.reload().unwrap();
    assert_eq!(s.num_docs(), 2);
    assert_eq!(s.num_vectors(), 2);
    drop(w);
    assert!(index.writer().is_ok());
}

#[test]
fn lang_filter() {
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::create(tmp.path(), IndexConfig::text_only()).unwrap();
    let mut w = index.writer().unwrap();
    w.add(Document::new("e", "Nairobi is a city").with_lang("eng")).unwrap();
    w.add(Document::new("s", "Nairobi ni mji mkuu").with_lang("swa")).unwrap();
    w.commit().unwrap();
    let snap = index.snapshot();
    assert_eq!(common::bm25(&snap, "nairobi", 10, None).unwrap().len(), 2);
    let swa = common::bm25(&snap, "nairobi", 10, Some("swa")).unwrap();
    assert_eq!(swa.len(), 1);
    assert_eq!(swa[0].key, "s");
    assert!(common::bm25(&snap, "nairobi", 10, Some("amh")).unwrap().is_empty());
}

#[test]
fn readers_never_see_half_a_commit() {
    const BATCH: u64 = 7;
    const COMMITS: u64 = 40;
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::create(tmp.path(), IndexConfig::with_vectors(DIM)).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for t in 0..3 {
        let index = index.clone();
        let done = Arc::clone(&done);
        readers.push(std::thread::spawn(move || {
            let mut checks = 0u64;
            let mut last_gen = 0;
            while !done.load(Ordering::Acquire) {
                let snap = index.snapshot();
                let (docs, vecs) = (snap.num_docs(), snap.num_vectors());
                assert_eq!(docs, vecs, "reader {t}: BM25 has {docs} docs, vectors {vecs}");
                assert_eq!(docs % BATCH, 0, "reader {t}: {docs} docs is not a whole number of batches");
                assert!(snap.generation() >= last_gen, "generations went backwards");
                last_gen = snap.generation();
                // Every BM25 hit has a live vector in the same snapshot, and the counts agree.
                let hits = common::bm25(&snap, "common", 10_000, None).unwrap();
                assert_eq!(hits.len() as u64, docs);
                for h in hits.iter().take(20) {
                    assert!(snap.vector(h.id).is_some(), "BM25 hit {} has no vector", h.key);
                }
                let dense = common::dense(&snap, &vector_for("probe", DIM), 5).unwrap();
                for h in dense {
                    assert!(snap.document(h.id).unwrap().is_some(), "dense hit {} has no document", h.id);
                }
                checks += 1;
            }
            checks
        }));
    }
    let mut w = index.writer().unwrap();
    for c in 0..COMMITS {
        for i in 0..BATCH {
            w.add(doc(&format!("c{c}-{i}"), "common words in every document", DIM)).unwrap();
        }
        // Also replace a document of the previous batch: deletes and adds land together.
        if c > 0 {
            w.upsert(doc(&format!("c{}-0", c - 1), "common words, second version", DIM)).unwrap();
        }
        w.commit().unwrap();
    }
    done.store(true, Ordering::Release);
    let checks: u64 = readers.into_iter().map(|r| r.join().expect("reader thread panicked")).sum();
    assert!(checks > 0);
    let snap = index.snapshot();
    assert_eq!(snap.num_docs(), BATCH * COMMITS);
    assert_eq!(snap.num_vectors(), BATCH * COMMITS);
    eprintln!("readers ran {checks} consistency checks across {COMMITS} commits");
}

#[test]
fn sled_deleted_or_corrupted_is_rebuilt_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut expected = HashMap::new();
    {
        let index = Index::create(dir, IndexConfig::with_vectors(DIM)).unwrap();
        let mut w = index.writer().unwrap();
        for i in 0..30 {
            expected.insert(format!("k{i}"), w.add(doc(&format!("k{i}"), "text", DIM)).unwrap());
        }
        w.delete("k0").unwrap();
        expected.remove("k0");
        w.commit().unwrap();
    }
    let check = |index: &Index| {
        for (k, &id) in &expected {
            assert_eq!(index.keymap_lookup(k).unwrap(), Some(id), "key {k}");
        }
        assert_eq!(index.keymap_lookup("k0").unwrap(), None);
        assert_eq!(index.keymap_len(), Some(expected.len()));
    };

    // 1. sled deleted.
    std::fs::remove_dir_all(dir.join("keymap")).unwrap();
    let index = Index::open(dir).unwrap();
    assert!(matches!(index.keymap_state(), Some(KeyMapState::Rebuilt(_))), "{:?}", index.keymap_state());
    check(&index);
    drop(index);
    let index = Index::open(dir).unwrap();
    assert_eq!(index.keymap_state(), Some(&KeyMapState::Current));
    drop(index);

    // 2. sled corrupted: every file in it overwritten with garbage.
    fn scribble(p: &Path) {
        for e in std::fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                scribble(&e.path());
            } else {
                let len = e.metadata().unwrap().len().max(64) as usize;
                std::fs::write(e.path(), (0..len).map(|i| (i * 131 % 251) as u8).collect::<Vec<_>>()).unwrap();
            }
        }
    }
    scribble(&dir.join("keymap"));
    let index = Index::open(dir).unwrap();
    assert!(matches!(index.keymap_state(), Some(KeyMapState::Rebuilt(_))), "{:?}", index.keymap_state());
    check(&index);
    // The rebuilt map serves the writer: upsert finds the old id to tombstone.
    let mut w = index.writer().unwrap();
    let old = expected["k5"];
    let new = w.upsert(doc("k5", "new", DIM)).unwrap();
    w.commit().unwrap();
    let snap = index.snapshot();
    assert_eq!(snap.vector(old), None);
    assert!(snap.vector(new).is_some());
    assert_eq!(snap.num_docs(), snap.num_vectors());
    drop((w, snap, index));

    // 3. sled stale: a copy of the sled directory from an older commit.
    let stale = tmp.path().join("stale-keymap");
    copy_dir(&dir.join("keymap"), &stale);
    {
        let index = Index::open(dir).unwrap();
        let mut w = index.writer().unwrap();
        w.add(doc("late", "added after the copy", DIM)).unwrap();
        w.commit().unwrap();
    }
    std::fs::remove_dir_all(dir.join("keymap")).unwrap();
    copy_dir(&stale, &dir.join("keymap"));
    let index = Index::open(dir).unwrap();
    match index.keymap_state() {
        Some(KeyMapState::Rebuilt(why)) => assert!(why.contains("generation"), "{why}"),
        other => panic!("stale sled was not rebuilt: {other:?}"),
    }
    assert!(index.keymap_lookup("late").unwrap().is_some());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn orphan_vector_files_are_removed_by_a_writable_open_only() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let index = Index::create(tmp.path(), IndexConfig::with_vectors(DIM)).unwrap();
        let mut w = index.writer().unwrap();
        w.add(doc("a", "x", DIM)).unwrap();
        w.commit().unwrap();
    }
    let vdir = tmp.path().join("vectors");
    let live = files_in(&vdir);
    assert_eq!(live.len(), 1, "{live:?}");
    // Leftovers of a commit that never happened.
    std::fs::copy(vdir.join(&live[0]), vdir.join("seg-000000000099.ovs")).unwrap();
    std::fs::write(vdir.join("tomb-000000000099.tomb"), b"junk").unwrap();
    std::fs::write(vdir.join("seg-000000000100.ovs.tmp"), b"partial").unwrap();
    let ro = Index::open_read_only(tmp.path()).unwrap();
    assert_eq!(ro.snapshot().num_vectors(), 1);
    assert_eq!(files_in(&vdir).len(), 4, "a read-only open must not delete anything");
    drop(ro);
    let index = Index::open(tmp.path()).unwrap();
    assert_eq!(index.orphans_removed(), 3);
    assert_eq!(files_in(&vdir), live);
    assert_eq!(index.snapshot().num_vectors(), 1);
}

#[test]
fn merge_policy_bounds_segments_and_keeps_vectors() {
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::create(tmp.path(), IndexConfig::with_vectors(DIM)).unwrap();
    let mut w = index.writer().unwrap();
    let mut live: HashMap<String, String> = HashMap::new(); // key -> vector seed
    for c in 0..30 {
        for i in 0..5 {
            let k = format!("m{c}-{i}");
            w.add(doc(&k, "merge test", DIM)).unwrap();
            live.insert(k.clone(), k);
        }
        if c > 2 {
            // Delete one old document and replace another in every commit.
            let del = format!("m{}-1", c - 3);
            w.delete(&del).unwrap();
            live.remove(&del);
            let up = format!("m{}-2", c - 3);
            let seed = format!("{up}-v{c}");
            w.upsert(Document::new(&up, "merge test").with_lang("eng").with_vector(vector_for(&seed, DIM))).unwrap();
            live.insert(up, seed);
        }
        w.commit().unwrap();
        let snap = index.snapshot();
        assert!(snap.num_vector_segments() <= optical::engine::vectors::MAX_SEGMENTS, "{} segments", snap.num_vector_segments());
        assert_eq!(snap.num_docs(), snap.num_vectors());
        assert_eq!(files_in(&tmp.path().join("vectors")).len(), snap.meta().segments.len() + snap.meta().tombstones.iter().count());
    }
    drop(w);
    drop(index);
    let index = Index::open(tmp.path()).unwrap();
    let snap = index.snapshot();
    assert_eq!(snap.num_docs() as usize, live.len());
    assert_eq!(snap.num_vectors() as usize, live.len());
    for (k, seed) in &live {
        let id = snap.id_of(k).unwrap().unwrap();
        assert_eq!(snap.vector(id).unwrap(), vector_for(seed, DIM), "vector of {k}");
    }
    // Tombstones only hold ids that still have rows; merges dropped the others.
    assert!(snap.num_tombstones() < 30, "{} tombstones", snap.num_tombstones());
}

#[test]
fn int8_merges_copy_rows_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let config = IndexConfig { dim: Some(DIM), elem: VectorElem::I8, encoder: None, token_codebook: None };
    let index = Index::create(tmp.path(), config).unwrap();
    let mut w = index.writer().unwrap();
    let mut first_seen: HashMap<u64, Vec<f32>> = HashMap::new();
    for c in 0..20 {
        for i in 0..3 {
            w.add(doc(&format!("q{c}-{i}"), "int8", DIM)).unwrap();
        }
        if c > 0 {
            w.delete(&format!("q{}-1", c - 1)).unwrap();
        }
        w.commit().unwrap();
        let snap = index.snapshot();
        for (_, id) in snap.keys().unwrap() {
            first_seen.entry(id).or_insert_with(|| snap.vector(id).unwrap());
        }
    }
    let snap = index.snapshot();
    assert!(snap.num_vector_segments() <= optical::engine::vectors::MAX_SEGMENTS);
    assert_eq!(snap.num_docs(), snap.num_vectors());
    for (_, id) in snap.keys().unwrap() {
        assert_eq!(snap.vector(id).unwrap(), first_seen[&id], "int8 row {id} changed in a merge");
    }
}

/// Many small commits start tantivy background merges. Once the engine's writer is dropped the
/// text index must be settled: a merge that finished later would rewrite meta.json and delete
/// segment files under a reader or the next writer (`check` once raced with exactly that).
#[test]
fn dropping_the_writer_waits_for_background_merges() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let index = Index::create(&dir, IndexConfig::with_vectors(DIM)).unwrap();
    {
        let mut w = index.writer().unwrap();
        for c in 0..24 {
            for i in 0..40 {
                let key = format!("doc-{c}-{i}");
                w.add(doc(&key, &format!("commit {c} document {i} about topic{}", i % 5), DIM)).unwrap();
            }
            w.commit().unwrap();
        }
    }
    let text = dir.join("text");
    let settled = (std::fs::read(text.join("meta.json")).unwrap(), files_in(&text));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let later = (std::fs::read(text.join("meta.json")).unwrap(), files_in(&text));
    assert_eq!(settled.1, later.1, "the text index's files changed after the writer was dropped");
    assert!(settled.0 == later.0, "meta.json changed after the writer was dropped");
    assert_eq!(index.snapshot().num_docs(), 24 * 40);
}
