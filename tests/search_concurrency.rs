//! Many threads search (bm25, dense, hybrid) while a writer commits adds and deletes: every
//! search sees one whole commit — the documents of exactly the commits up to its generation,
//! in BM25 and in vectors alike.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use optical::engine::{Document, Index, IndexConfig, VectorElem};
use optical::search::{Mode, SearchRequest, Searcher};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DIM: usize = 16;
const COMMITS: u64 = 40;
const ADD: u64 = 20;
const DEL: u64 = 10;

fn unit(rng: &mut StdRng) -> Vec<f32> {
    let v: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

/// Commit `c` (generation c) adds `g{c}-0..ADD` and deletes `g{c-1}-0..DEL`.
fn live_keys(generation: u64) -> HashSet<String> {
    let mut keys = HashSet::new();
    for c in 1..=generation {
        let first = if c < generation { DEL } else { 0 };
        for j in first..ADD {
            keys.insert(format!("g{c}-{j}"));
        }
    }
    keys
}

fn check(searcher: &Searcher, q: &[f32], last_seen: &mut u64) -> u64 {
    let g = searcher.snapshot().generation();
    assert!(
        g >= *last_seen,
        "generation went back from {last_seen} to {g}"
    );
    *last_seen = g;
    let want = live_keys(g);
    for mode in [Mode::Bm25, Mode::Dense, Mode::Hybrid] {
        let req = SearchRequest::new("common")
            .with_mode(mode)
            .with_k(100_000)
            .with_query_vector(q.to_vec());
        let res = searcher.search(&req).unwrap();
        assert_eq!(res.generation, g);
        let got: HashSet<String> = res.hits.into_iter().map(|h| h.key).collect();
        assert_eq!(
            got.len(),
            want.len(),
            "{mode} at generation {g}: {} hits, {} live documents",
            got.len(),
            want.len()
        );
        assert_eq!(got, want, "{mode} at generation {g}");
    }
    g
}

#[test]
fn searches_see_whole_commits_while_a_writer_commits() {
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::create(
        tmp.path(),
        IndexConfig {
            dim: Some(DIM),
            elem: VectorElem::F32I8,
            encoder: None,
            token_codebook: None,
        },
    )
    .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let checks = Arc::new(AtomicUsize::new(0));
    let base = Searcher::for_index(&index);
    let mut readers = Vec::new();
    for t in 0..4u64 {
        let (index, base, done, checks) =
            (index.clone(), base.clone(), done.clone(), checks.clone());
        readers.push(std::thread::spawn(move || {
            let mut rng = StdRng::seed_from_u64(100 + t);
            let mut last = 0;
            let mut seen = HashSet::new();
            while !done.load(Ordering::Acquire) {
                let s = base.refresh(&index);
                seen.insert(check(&s, &unit(&mut rng), &mut last));
                checks.fetch_add(1, Ordering::Relaxed);
            }
            seen.len()
        }));
    }
    // A read-only handle on the same directory, following commits through `reload` (the path a
    // searching process beside the writer takes).
    let ro = {
        let (dir, done, checks) = (tmp.path().to_path_buf(), done.clone(), checks.clone());
        std::thread::spawn(move || {
            let ro = Index::open_read_only(&dir).unwrap();
            let mut rng = StdRng::seed_from_u64(7);
            let mut last = 0;
            let mut seen = HashSet::new();
            while !done.load(Ordering::Acquire) {
                let s = Searcher::new(ro.reload().unwrap());
                seen.insert(check(&s, &unit(&mut rng), &mut last));
                checks.fetch_add(1, Ordering::Relaxed);
            }
            seen.len()
        })
    };
    let mut rng = StdRng::seed_from_u64(1);
    let mut w = index.writer().unwrap();
    for c in 1..=COMMITS {
        for j in 0..ADD {
            w.add(
                Document::new(format!("g{c}-{j}"), format!("common tok{c} word{j}"))
                    .with_lang("eng")
                    .with_vector(unit(&mut rng)),
            )
            .unwrap();
        }
        if c > 1 {
            for j in 0..DEL {
                assert!(w.delete(&format!("g{}-{j}", c - 1)).unwrap());
            }
        }
        let info = w.commit().unwrap();
        assert_eq!(info.generation, c);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // Let the readers see the last commit too.
    std::thread::sleep(std::time::Duration::from_millis(100));
    done.store(true, Ordering::Release);
    let distinct: Vec<usize> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    let ro_distinct = ro.join().unwrap();
    eprintln!(
        "{} consistent checks; distinct generations seen per thread: {distinct:?}, read-only handle: {ro_distinct}",
        checks.load(Ordering::Relaxed)
    );
    // The readers really ran alongside the commits (not all before or after them).
    assert!(distinct.iter().all(|&d| d >= 3), "{distinct:?}");
    let final_searcher = Searcher::for_index(&index);
    check(&final_searcher, &unit(&mut rng), &mut 0);
    assert_eq!(final_searcher.snapshot().generation(), COMMITS);
}
