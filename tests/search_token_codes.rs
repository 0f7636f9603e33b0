//! Stored token codes on a tiny random-weight model: an index created with a document encoder
//! whose model directory has a token codebook keeps a copy and stores every passage's codes; the
//! default search reranks cross-lingual queries on them with no document encoder; a merge carries
//! them; a changed codebook is caught by open and by `check`; codes are refused where they mean
//! nothing.
mod common;

use std::path::Path;
use std::sync::Arc;

use optical::Error;
use optical::encoder::codebook::{CODEBOOK_FILE, Codebook, FitOptions, unit_content_rows};
use optical::encoder::{Encoder, Role, default_device};
use optical::engine::{Document, Index, IndexConfig, check, merge_indexes};
use optical::search::late::{self, Rerank, RerankChoice, TokenRows};
use optical::search::{Mode, SearchHit, SearchRequest, Searcher};

const QUERY: &str = "the red cat sees a fish";

/// A tiny model directory with a token codebook fitted on its own passage token states.
fn model_with_codebook(dir: &Path) -> Arc<Encoder> {
    common::tiny::tiny_model(dir, 7);
    let plain = Encoder::load(dir, &default_device()).unwrap();
    let words = common::tiny::WORDS;
    let texts: Vec<String> = (0..300).map(|i| format!("{} {} {} {}", words[i % 24], words[(i * 7 + 1) % 24], words[(i * 11 + 5) % 24], words[(i / 24) % 24])).collect();
    let mut rows = Vec::new();
    for s in plain.token_states(&texts, Role::Passage).unwrap() {
        rows.extend(unit_content_rows(&s.states, &s.content, s.dim));
    }
    let options = FitOptions { centroids: 64, bits: 4, iterations: 5, seed: 0 };
    let book = Codebook::fit(&rows, plain.dim(), &options, &plain.info().fingerprint, |_, _| {}).unwrap();
    book.save(&dir.join(CODEBOOK_FILE)).unwrap();
    let encoder = Encoder::load(dir, &default_device()).unwrap();
    assert!(encoder.codebook().is_some(), "the model directory's codebook is loaded with it");
    Arc::new(encoder)
}

fn docs(range: std::ops::Range<usize>) -> Vec<Document> {
    let words = common::tiny::WORDS;
    range.map(|i| Document::new(format!("d{i}"), format!("the {} {} {}", words[i % 24], words[(i * 5 + 3) % 24], words[(i * 7 + 11) % 24]))).collect()
}

fn build(dir: &Path, encoder: &Arc<Encoder>, docs: Vec<Document>) -> Index {
    let index = Index::open_or_create_for(dir, encoder).unwrap();
    let mut w = index.writer().unwrap().with_encoder(Arc::clone(encoder)).unwrap();
    w.add_batch(docs).unwrap();
    w.commit().unwrap();
    drop(w);
    index
}

fn keys(hits: &[SearchHit]) -> Vec<String> {
    hits.iter().map(|h| h.key.clone()).collect()
}

#[test]
fn an_index_stores_codes_and_the_default_search_reranks_on_them() {
    let tmp = tempfile::tempdir().unwrap();
    let encoder = model_with_codebook(&tmp.path().join("model"));
    let index = build(&tmp.path().join("idx"), &encoder, docs(0..12));
    let snap = index.snapshot();
    let book = Arc::clone(snap.codebook().expect("the index keeps the codebook"));
    assert_eq!(snap.config().token_codebook.as_deref(), Some(book.fingerprint().unwrap().as_str()));
    assert!(tmp.path().join("idx").join(CODEBOOK_FILE).is_file());

    // Every passage's codes: one code per content token, decoding close to the encoder's rows.
    for doc in docs(0..12) {
        let stored = snap.document_by_key(&doc.key).unwrap().unwrap();
        let codes = stored.token_codes.expect("stored codes");
        let states = &encoder.token_states(&[&doc.body], Role::Passage).unwrap()[0];
        let exact = unit_content_rows(&states.states, &states.content, states.dim);
        let decoded = book.decode(&codes).unwrap();
        assert_eq!(decoded.len(), exact.len(), "{}: one code per content token", doc.key);
        let n = exact.len() / states.dim;
        let cos: f32 = exact.chunks(states.dim).zip(decoded.chunks(states.dim)).map(|(a, b)| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>()).sum::<f32>() / n as f32;
        assert!(cos > 0.9, "{}: decoded rows have mean cosine {cos} to the exact rows", doc.key);
    }

    // No document encoder: the default request reranks a cross-lingual query on the codes.
    let searcher = Searcher::for_index(&index).with_encoder(Arc::clone(&encoder)).unwrap();
    for mode in [Mode::Hybrid, Mode::Dense] {
        let base = SearchRequest::new(QUERY).with_query_lang("fra").with_mode(mode).with_k(12).with_explain(true);
        let plain = searcher.search(&base.clone().with_rerank_choice(RerankChoice::Off)).unwrap().hits;
        let auto = searcher.search(&base).unwrap();
        assert_eq!(keys(&auto.hits), keys(&searcher.search(&base.clone().with_rerank(Rerank::default())).unwrap().hits), "{mode}: auto is the default maxsim");
        assert!(auto.hits.iter().all(|h| h.explain.as_ref().unwrap().maxsim_score.is_some()), "{mode}: every hit of the top 20 is scored");
        assert!(auto.timings.late_interaction > std::time::Duration::ZERO);

        // Weight 1 orders the top by MaxSim over the decoded codes, computed here.
        let q = TokenRows::from_states(&encoder.token_states(&[QUERY], Role::Query).unwrap()[0]);
        let mut want: Vec<(String, f32)> = plain
            .iter()
            .map(|h| {
                let codes = snap.document_by_key(&h.key).unwrap().unwrap().token_codes.unwrap();
                (h.key.clone(), late::maxsim(&q, &TokenRows::new(book.decode(&codes).unwrap(), book.dim())))
            })
            .collect();
        want.sort_by(|a, b| b.1.total_cmp(&a.1));
        let by_maxsim = searcher.search(&base.clone().with_rerank(Rerank::MaxSim { depth: 12, weight: 1.0 })).unwrap().hits;
        assert_eq!(keys(&by_maxsim), want.iter().map(|w| w.0.clone()).collect::<Vec<_>>(), "{mode}");
        assert_ne!(keys(&by_maxsim), keys(&plain), "{mode}: the test needs a ranking MaxSim reorders");

        // A query in the documents' language keeps the fused order; `none` turns the stage off.
        let mono = SearchRequest { query_lang: None, ..base.clone() };
        let mono_hits = searcher.search(&mono).unwrap().hits;
        assert_eq!(keys(&mono_hits), keys(&searcher.search(&mono.clone().with_rerank_choice(RerankChoice::Off)).unwrap().hits), "{mode}");
        assert!(mono_hits.iter().all(|h| h.explain.as_ref().unwrap().maxsim_score.is_none()));
        assert!(plain.iter().all(|h| h.explain.as_ref().unwrap().maxsim_score.is_none()));
    }
    // bm25 mode has no stage by default (and refuses one asked for).
    let bm25 = searcher.search(&SearchRequest::new(QUERY).with_query_lang("fra").with_mode(Mode::Bm25).with_explain(true)).unwrap();
    assert!(bm25.hits.iter().all(|h| h.explain.as_ref().unwrap().maxsim_score.is_none()));
}

#[test]
fn a_merge_carries_the_codes_and_a_changed_codebook_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let encoder = model_with_codebook(&tmp.path().join("model"));
    let a = build(&tmp.path().join("a"), &encoder, docs(0..6));
    let b = build(&tmp.path().join("b"), &encoder, docs(6..12));
    let out = tmp.path().join("merged");
    merge_indexes(&out, &[tmp.path().join("a"), tmp.path().join("b")]).unwrap();
    let merged = Index::open_read_only(&out).unwrap().snapshot();
    assert_eq!(merged.config(), a.snapshot().config());
    for (shard, range) in [(&a, 0..6), (&b, 6..12)] {
        for doc in docs(range) {
            let want = shard.snapshot().document_by_key(&doc.key).unwrap().unwrap().token_codes;
            assert!(want.is_some());
            assert_eq!(merged.document_by_key(&doc.key).unwrap().unwrap().token_codes, want, "{}", doc.key);
        }
    }
    drop((a, b));

    // One centroid value changed in the index's copy: open and check both name the file.
    let file = out.join(CODEBOOK_FILE);
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 40;
    bytes[last] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    match Index::open_read_only(&out) {
        Err(Error::Damaged { message }) => assert!(message.contains(CODEBOOK_FILE), "{message}"),
        Err(other) => panic!("expected Error::Damaged, got {other:?}"),
        Ok(_) => panic!("a changed codebook was not noticed"),
    }
    let report = check(&out).unwrap();
    assert!(report.problems.iter().any(|p| p.file == file), "{:?}", report.problems);
}

#[test]
fn codes_are_refused_where_they_mean_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    // An index without a codebook refuses a document that brings codes.
    let index = Index::create(tmp.path().join("plain"), IndexConfig::with_vectors(4)).unwrap();
    let mut w = index.writer().unwrap();
    let doc = Document::new("k", "text").with_vector(vec![1.0, 0.0, 0.0, 0.0]).with_token_codes(vec![0; 10]);
    match w.add(doc) {
        Err(Error::Invalid { message }) => assert!(message.contains("token codes") && message.contains("without a token codebook"), "{message}"),
        other => panic!("expected Error::Invalid, got {other:?}"),
    }
    drop(w);

    // An index with one refuses codes that are not whole tokens.
    let encoder = model_with_codebook(&tmp.path().join("model"));
    let coded = build(&tmp.path().join("coded"), &encoder, docs(0..2));
    let mut w = coded.writer().unwrap();
    let bad = Document::new("k", "text").with_vector(vec![0.0; encoder.dim()]).with_token_codes(vec![0; 7]);
    match w.add(bad) {
        Err(Error::Invalid { message }) => assert!(message.contains("not a whole number"), "{message}"),
        other => panic!("expected Error::Invalid, got {other:?}"),
    }
    drop(w);

    // A codebook fitted on other weights is refused when the model directory is loaded.
    let other = tmp.path().join("other");
    common::tiny::tiny_model(&other, 8);
    std::fs::copy(tmp.path().join("model").join(CODEBOOK_FILE), other.join(CODEBOOK_FILE)).unwrap();
    let e = format!("{:#}", Encoder::load(&other, &default_device()).unwrap_err());
    assert!(e.contains(CODEBOOK_FILE) && e.contains("fitted on the token states of weights"), "{e}");
}

#[test]
fn optical_model_fit_codebook_writes_a_codebook_the_model_then_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    common::tiny::tiny_model(&model, 7);
    let words = common::tiny::WORDS;
    let tsv: String = (0..200).map(|i| format!("{} {} {}\t{} {}\n", words[i % 24], words[(i * 5 + 1) % 24], words[(i / 24) % 24], common::tiny::foreign(words[(i * 3) % 24]), words[(i * 7) % 24])).collect();
    std::fs::write(tmp.path().join("bitext.tsv"), tsv).unwrap();
    let run = |args: &[&str]| std::process::Command::new(env!("CARGO_BIN_EXE_optical")).args(args).output().unwrap();
    let (m, text) = (model.to_str().unwrap().to_string(), tmp.path().join("bitext.tsv").to_str().unwrap().to_string());
    let out = run(&["model", "fit-codebook", &m, "--text", &text, "--rows", "600", "--centroids", "16", "--bits", "2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("k-means iteration 6/6") && stderr.contains("400 texts from"), "{stderr}");
    let encoder = Encoder::load(&model, &default_device()).unwrap();
    let book = encoder.codebook().expect("the written codebook is loaded with the model");
    assert_eq!((book.centroids(), book.bits(), book.dim()), (16, 2, encoder.dim()));
    assert_eq!(book.encoder_fingerprint(), encoder.info().fingerprint);

    // Input it cannot read is named.
    std::fs::write(tmp.path().join("notes.txt"), "x").unwrap();
    let out = run(&["model", "fit-codebook", &m, "--text", tmp.path().join("notes.txt").to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("notes.txt") && stderr.contains("expected a .jsonl or .tsv"), "{stderr}");
}
