//! Failure injection over every step of a commit ([`CommitStep::ALL`]): for each step, a commit
//! that adds, upserts and deletes documents and makes the merge policy merge fails there; the
//! test then proves that the commit reports the failure, that the index holds exactly the last
//! commit (the previous one when the failure came before the commit point, the new one after
//! it: documents, vectors, BM25, sled, `check`), and that the next writer — on the same `Index`
//! and after a reopen — adds, deletes and commits with the right counts.
//!
//! Real tantivy, sled and vector segments; the failure is injected by the test hook
//! `Index::fail_next_commit_at`.
mod common;

use std::collections::BTreeMap;
use std::path::Path;

use optical::engine::{CommitStep, Document, Index, IndexConfig, VectorElem, check};

const DIM: usize = 4;

fn vector_for(key: &str, version: u32) -> Vec<f32> {
    common::hashed_vector(&format!("{key}@{version}"), DIM)
}

/// The expected contents: key → version (the body names both, the vector derives from both).
type State = BTreeMap<String, u32>;

fn doc(key: &str, version: u32) -> Document {
    Document::new(key, format!("w{key} v{version}x{key}")).with_lang("eng").with_vector(vector_for(key, version))
}

/// The index holds exactly `state`: every document with its vector, found by BM25 under its
/// own word, known to sled under the right id, nothing else; `check` finds nothing wrong; and
/// `vectors/` holds only the files the commit names.
fn assert_state(index: &Index, state: &State, when: &str) {
    let snap = index.snapshot();
    assert_eq!(snap.num_docs(), state.len() as u64, "{when}: documents");
    assert_eq!(snap.num_vectors(), state.len() as u64, "{when}: vectors");
    for (k, &v) in state {
        let id = snap.id_of(k).unwrap().unwrap_or_else(|| panic!("{when}: {k} missing"));
        assert_eq!(snap.vector(id), Some(vector_for(k, v)), "{when}: vector of {k}");
        let hits = common::bm25(&snap, &format!("v{v}x{k}"), 5, None).unwrap();
        assert_eq!(hits.len(), 1, "{when}: BM25 finds {k} version {v} {} times", hits.len());
        if index.keymap_state().is_some() {
            assert_eq!(index.keymap_lookup(k).unwrap(), Some(id), "{when}: sled entry of {k}");
        }
    }
    let report = check(index.dir()).unwrap();
    assert!(report.problems.is_empty(), "{when}: check finds {:?}", report.problems);
    let mut files: Vec<String> =
        std::fs::read_dir(index.dir().join("vectors")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    let meta = snap.meta();
    let mut named: Vec<String> = meta.segments.iter().chain(meta.tombstones.iter()).cloned().collect();
    named.extend(meta.segments.iter().map(|s| s.replace(".ovs", ".i8.ovs")));
    named.sort();
    assert_eq!(files, named, "{when}: files in vectors/");
}

/// Commits `adds` (new keys or upserts) and `deletes`, updating `state`; returns the result.
fn commit(index: &Index, state: &mut State, adds: &[(&str, u32)], deletes: &[&str]) -> anyhow::Result<u64> {
    let mut w = index.writer()?;
    for &(k, v) in adds {
        w.upsert(doc(k, v))?;
    }
    for k in deletes {
        assert!(w.delete(k)?, "{k} exists");
    }
    let info = w.commit()?;
    for &(k, v) in adds {
        state.insert(k.to_string(), v);
    }
    for k in deletes {
        state.remove(*k);
    }
    assert_eq!(info.docs, state.len() as u64, "documents reported by the commit");
    Ok(info.generation)
}

/// An index with eight one-segment commits, so that the next commit's segment makes the merge
/// policy (more than eight segments) merge.
fn eight_commits(dir: &Path, state: &mut State) -> Index {
    let index = Index::create(dir, IndexConfig { dim: Some(DIM), elem: VectorElem::F32I8, encoder: None, token_codebook: None }).unwrap();
    for c in 0..8 {
        let keys: Vec<String> = (0..3).map(|i| format!("k{c}_{i}")).collect();
        let adds: Vec<(&str, u32)> = keys.iter().map(|k| (k.as_str(), 0)).collect();
        commit(&index, state, &adds, &[]).unwrap();
    }
    assert_eq!(index.snapshot().meta().segments.len(), 8);
    index
}

#[test]
fn a_commit_failing_at_any_step_leaves_the_last_commit_intact_and_the_next_writer_continues() {
    for step in CommitStep::ALL {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("idx");
        let mut state = State::new();
        let index = eight_commits(&dir, &mut state);
        let before = state.clone();
        let generation = index.snapshot().generation();

        // Adds (k8_0, k8_1), an upsert (k0_0), deletes from a segment the merge takes (k1_1)
        // and from one it may not: new segment, merge, tombstones, text and sled all change.
        let adds = [("k8_0", 0), ("k8_1", 0), ("k0_0", 1)];
        let deletes = ["k1_1", "k7_2"];
        index.fail_next_commit_at(step);
        let result = commit(&index, &mut state, &adds, &deletes);
        let when = format!("after a failure at {step:?}");
        let mut after = before.clone();
        for (k, v) in adds {
            after.insert(k.to_string(), v);
        }
        for k in deletes {
            after.remove(k);
        }
        if step == CommitStep::RemoveObsolete {
            // Best effort: the commit stands, the files it no longer names are left behind.
            assert_eq!(result.unwrap(), generation + 1, "{when}");
            let leftovers = std::fs::read_dir(dir.join("vectors")).unwrap().count();
            let named = index.snapshot().meta().segments.len() * 2 + 1;
            assert!(leftovers > named, "{when}: the obsolete files were removed anyway");
        } else {
            let err = format!("{:#}", result.unwrap_err());
            assert!(err.contains("injected failure"), "{when}: {err}");
            assert_eq!(state, before, "the helper records nothing of a failed commit");
        }
        let expected = if step.after_commit_point() { after } else { before };
        state = expected.clone();
        if step != CommitStep::RemoveObsolete {
            // What this process shows: the previous commit, or the new one once a writer looks.
            let _ = index.writer().unwrap();
            assert_state(&index, &state, &when);
            assert_eq!(index.snapshot().generation(), generation + u64::from(step.after_commit_point()), "{when}");
        }

        // The next writer on the same Index: adds, an upsert and a delete, counted right.
        let g = commit(&index, &mut state, &[("n0", 0), ("k2_0", 2)], &["k3_0"]).unwrap();
        assert_eq!(g, index.snapshot().generation());
        assert_state(&index, &state, &format!("{when}, then a commit on the same Index"));
        drop(index);

        // After a reopen: the same state, and the next writer continues.
        let index = Index::open(&dir).unwrap();
        assert_state(&index, &state, &format!("{when}, reopened"));
        commit(&index, &mut state, &[("n1", 0), ("k8_0", 3)], &["k4_1"]).unwrap();
        assert_state(&index, &state, &format!("{when}, reopened, then a commit"));
        drop(index);
        let ro = Index::open_read_only(&dir).unwrap();
        assert_state(&ro, &state, &format!("{when}, read-only"));
    }
}
