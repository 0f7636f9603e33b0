//! BM25 as sparse vectors (`engine::sparse`, what `optical export` writes for Milvus): the dot
//! product of a document's vector with a query's must be the score the BM25 leg gives that
//! document — for plain queries over English and non-English documents, for translated (PSQ)
//! queries, across segments and after deletes.
use std::collections::HashMap;
use std::sync::Arc;

use optical::engine::sparse::SparseVector;
use optical::engine::{Document, Index, IndexConfig, Snapshot};
use optical::search::{Mode, SearchRequest, Searcher};
use optical::translate::TranslationTable;

fn dot(a: &SparseVector, b: &SparseVector) -> f32 {
    let b: HashMap<u32, f32> = b.iter().copied().collect();
    a.iter().map(|(d, v)| v * b.get(d).copied().unwrap_or(0.0)).sum()
}

fn docs() -> Vec<Document> {
    let eng = [
        ("kano", "Kano Pillars", "Kano Pillars Football Club is a football club based in Kano, founded in 1990."),
        ("lagos", "Lagos", "Lagos is the largest city in Nigeria and a football city too."),
        ("nairobi", "Nairobi", "Nairobi is the capital and largest city of Kenya."),
        ("ibadan", "University of Ibadan", "The University of Ibadan was founded in 1948 in Ibadan, Nigeria."),
        ("clubs", "", "Football clubs in Nigeria play in the Nigeria Professional Football League, founded 1990."),
    ];
    let mut out: Vec<Document> = eng.iter().map(|(k, t, b)| Document::new(*k, *b).with_title(*t).with_lang("eng")).collect();
    out.push(Document::new("hau1", "Kungiyar kwallon kafa ta Kano Pillars an kafa ta a shekara ta 1990.").with_lang("hau"));
    out.push(Document::new("swa1", "Nairobi ni mji mkuu wa Kenya na mji mkubwa zaidi.").with_title("Nairobi").with_lang("swa"));
    out
}

/// Every hit's BM25 score equals the dot product of the sparse vectors.
fn check(searcher: &Searcher, snap: &Snapshot, req: &SearchRequest) -> usize {
    let vectors: HashMap<String, SparseVector> = snap.bm25_sparse_documents().unwrap().into_iter().collect();
    assert_eq!(vectors.len() as u64, snap.num_docs());
    let q = searcher.bm25_sparse_query(req).unwrap();
    assert!(!q.is_empty());
    let hits = searcher.search(req).unwrap().hits;
    for h in &hits {
        let want = h.explain.as_ref().and_then(|e| e.bm25_score).unwrap_or(h.score);
        let got = dot(&vectors[&h.key], &q);
        assert!((got - want).abs() <= 1e-4 * want.abs().max(1.0), "{}: sparse dot {got} vs BM25 {want} for {:?}", h.key, req.query);
    }
    // Documents BM25 did not return score 0.
    for (key, v) in &vectors {
        if !hits.iter().any(|h| &h.key == key) {
            assert_eq!(dot(v, &q), 0.0, "{key} is no BM25 hit of {:?} but has a sparse score", req.query);
        }
    }
    hits.len()
}

#[test]
fn sparse_dot_products_are_bm25_scores() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::create(dir.path(), IndexConfig::text_only()).unwrap();
    let mut w = index.writer().unwrap();
    let all = docs();
    // Two commits, so two segments, and a delete: statistics span segments as tantivy's do.
    w.add_batch(all[..4].to_vec()).unwrap();
    w.commit().unwrap();
    w.add_batch(all[4..].to_vec()).unwrap();
    w.add(Document::new("gone", "Kano football, soon deleted.").with_lang("eng")).unwrap();
    w.commit().unwrap();
    w.delete("gone").unwrap();
    w.commit().unwrap();
    let snap = index.snapshot();
    let searcher = Searcher::new(snap.clone());
    for q in ["football club founded in Kano", "Nairobi Kenya", "kafa Kano shekara", "largest cities of Nigeria"] {
        let n = check(&searcher, &snap, &SearchRequest::new(q).with_mode(Mode::Bm25).with_k(10).with_explain(true));
        assert!(n > 0, "{q} finds something");
    }

    // A translated query (PSQ): translations weighted in the English fields, unknown words kept.
    let mut table = TranslationTable::new("hau", "eng", "test");
    table.insert("kwallon", vec![("footbal".into(), 0.7), ("ball".into(), 0.3)]);
    table.insert("kafa", vec![("found".into(), 0.6), ("foot".into(), 0.4)]);
    let searcher = searcher.with_translation_table(Arc::new(table));
    let req = SearchRequest::new("kungiyar kwallon kafa Kano").with_mode(Mode::Bm25).with_query_lang("hau").with_k(10).with_explain(true);
    assert!(searcher.translated_query(&req).unwrap().unwrap().iter().any(|t| t.translated));
    assert!(check(&searcher, &snap, &req) >= 2);
}
