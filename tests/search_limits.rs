//! Result counts and candidate depths far beyond the index size: a search returns every
//! matching document instead of trying to allocate room for `k` hits (issue 13, D6: `-k
//! 4294967296` aborted the process on an allocation failure, `usize::MAX` panicked on capacity
//! overflow).
use optical::engine::{Bm25Fields, Document, Index, IndexConfig};
use optical::search::{Mode, SearchRequest, Searcher};

const DIM: usize = 4;

fn index_with_docs(dir: &std::path::Path, n: usize) -> Index {
    let index = Index::create(dir, IndexConfig::with_vectors(DIM)).unwrap();
    let mut w = index.writer().unwrap();
    for i in 0..n {
        let mut v = vec![0.1f32; DIM];
        v[i % DIM] = 1.0;
        w.add(
            Document::new(format!("d{i}"), format!("river number {i}"))
                .with_lang("eng")
                .with_vector(v),
        )
        .unwrap();
    }
    w.commit().unwrap();
    index
}

const HUGE: [usize; 3] = [u32::MAX as usize + 1, usize::MAX / 2, usize::MAX];

#[test]
fn huge_k_returns_every_match_in_every_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let index = index_with_docs(tmp.path(), 6);
    let searcher = Searcher::for_index(&index);
    for k in HUGE {
        for mode in [Mode::Bm25, Mode::Dense, Mode::Hybrid] {
            let req = SearchRequest::new("river")
                .with_k(k)
                .with_mode(mode)
                .with_query_vector(vec![1.0, 0.0, 0.0, 0.0]);
            let res = searcher
                .search(&req)
                .unwrap_or_else(|e| panic!("{mode} k={k}: {e:#}"));
            assert_eq!(res.hits.len(), 6, "{mode} k={k}");
            let mut deep = req.clone().with_explain(true);
            (deep.sparse_depth, deep.dense_depth) = (k, k);
            assert_eq!(
                searcher.search(&deep).unwrap().hits.len(),
                6,
                "{mode} k={k}, depths {k}"
            );
        }
        let snap = index.snapshot();
        assert_eq!(
            snap.bm25_candidates("river", k, None, Bm25Fields::default()).unwrap().len(),
            6,
            "Snapshot::bm25_candidates k={k}"
        );
        assert_eq!(
            snap.dense_first_pass(&[1.0, 0.0, 0.0, 0.0], k, None).unwrap().len(),
            6,
            "Snapshot::dense_first_pass k={k}"
        );
    }
}

#[test]
fn huge_k_on_an_empty_index() {
    let tmp = tempfile::tempdir().unwrap();
    let index = index_with_docs(tmp.path(), 0);
    let searcher = Searcher::for_index(&index);
    for mode in [Mode::Bm25, Mode::Dense, Mode::Hybrid] {
        let req = SearchRequest::new("river")
            .with_k(usize::MAX)
            .with_mode(mode)
            .with_query_vector(vec![1.0; DIM]);
        assert!(searcher.search(&req).unwrap().hits.is_empty(), "{mode}");
    }
}
