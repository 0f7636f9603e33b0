//! PSQ, the cross-lingual BM25 leg, and fusion from saved legs, on real indexes (no model):
//! a translation table trained on a tiny bitext gives the expected top translation, a translated
//! query ranks the document with the translated terms first where plain BM25 finds nothing,
//! table files reject corruption naming the file (and, as property tests, the parser never panics
//! and refuses any edited row), `optical psq`/`optical search --psq --explain`
//! work through the binary, and the two legs of a hybrid search fused by each fusion give the
//! same ranking as the search itself.
use std::process::Command;
use std::sync::Arc;

use optical::distill::BitextPair;
use optical::engine::{Document, Index, IndexConfig, VectorElem};
use optical::search::{Fusion, Mode, SearchRequest, Searcher};
use optical::translate::{Model1Options, Pruning, TranslationTable, train_model1};

fn pair(f: &str, e: &str) -> BitextPair {
    BitextPair { foreign: f.into(), english: e.into() }
}

/// Hausa–English sentences where "ruwa" always comes with "water", "gari" with "town",
/// "shekara" with "year"; "da" (and) is everywhere.
fn bitext() -> Vec<BitextPair> {
    vec![
        pair("ruwa da gari", "water and the town"),
        pair("ruwa da shekara", "water and the year"),
        pair("gari da shekara", "the town and the year"),
        pair("ruwa", "water"),
        pair("gari", "town"),
        pair("shekara", "year"),
        pair("ruwa gari", "water town"),
    ]
}

fn table() -> TranslationTable {
    let options = Model1Options { iterations: 10, min_count: 1, pruning: Pruning { top_k: 3, cumulative: 0.95, min_prob: 0.01 } };
    train_model1(&bitext(), "hau", options).unwrap()
}

const DIM: usize = 4;

/// English documents; "w" is about water, "t" about a town, "y" about a year, "x" unrelated.
fn index(dir: &std::path::Path) -> Index {
    let index = Index::create(dir, IndexConfig { dim: Some(DIM), elem: VectorElem::F32, encoder: None, token_codebook: None }).unwrap();
    let mut w = index.writer().unwrap();
    let docs = [
        ("w", "Clean water reaches every home", [1.0, 0.0, 0.0, 0.0]),
        ("t", "The town council met on Monday", [0.0, 1.0, 0.0, 0.0]),
        ("y", "A year of elections", [0.0, 0.0, 1.0, 0.0]),
        ("x", "Football results from the league", [0.0, 0.0, 0.0, 1.0]),
    ];
    for (key, body, v) in docs {
        w.add(Document::new(key, body).with_lang("eng").with_vector(v.to_vec())).unwrap();
    }
    w.commit().unwrap();
    index
}

#[test]
fn a_tiny_bitext_gives_the_expected_top_translations() {
    let t = table();
    assert_eq!(t.get("ruwa").unwrap()[0].0, "water");
    assert_eq!(t.get("gari").unwrap()[0].0, "town");
    assert_eq!(t.get("shekara").unwrap()[0].0, "year");
    for (_, list) in ["ruwa", "gari", "shekara"].iter().map(|w| (w, t.get(w).unwrap())) {
        let mass: f32 = list.iter().map(|(_, p)| p).sum();
        assert!((mass - 1.0).abs() < 1e-5, "pruned rows are renormalised: {list:?}");
    }
}

#[test]
fn a_translated_query_ranks_the_document_with_the_translated_terms_first() {
    let tmp = tempfile::tempdir().unwrap();
    let index = index(tmp.path());
    let req = SearchRequest::new("ruwa").with_mode(Mode::Bm25).with_query_lang("hau").with_k(4);
    // Plain BM25: the Hausa word occurs in no English document.
    let plain = Searcher::for_index(&index).search(&req).unwrap();
    assert!(plain.hits.is_empty(), "{:?}", plain.hits);
    let psq = Searcher::for_index(&index).with_translation_table(Arc::new(table()));
    let hits = psq.search(&req).unwrap().hits;
    assert_eq!(hits.first().map(|h| h.key.as_str()), Some("w"), "{hits:?}");
    let req = SearchRequest::new("shekara gari").with_mode(Mode::Bm25).with_query_lang("hau").with_k(4);
    let keys: Vec<String> = psq.search(&req).unwrap().hits.into_iter().map(|h| h.key).collect();
    assert_eq!(&keys[..2].iter().map(String::as_str).collect::<std::collections::HashSet<_>>(), &["t", "y"].into_iter().collect());
    // Only the table's language is translated: the same words as English query stay untranslated.
    let eng = SearchRequest::new("ruwa").with_mode(Mode::Bm25).with_query_lang("eng");
    assert!(psq.search(&eng).unwrap().hits.is_empty());
    // A word without an entry keeps its form: "football" still finds "x".
    let mixed = SearchRequest::new("ruwa football").with_mode(Mode::Bm25).with_query_lang("hau").with_k(4);
    let keys: Vec<String> = psq.search(&mixed).unwrap().hits.into_iter().map(|h| h.key).collect();
    assert!(keys.contains(&"w".to_string()) && keys.contains(&"x".to_string()), "{keys:?}");
    let terms = psq.translated_query(&mixed).unwrap().unwrap();
    assert!(terms.iter().any(|t| t.term == "water" && t.translated));
    assert!(terms.iter().any(|t| t.term == "football" && !t.translated));
}

#[test]
fn a_name_spelled_the_query_language_s_way_finds_its_english_spelling() {
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::create(tmp.path(), IndexConfig { dim: Some(DIM), elem: VectorElem::F32, encoder: None, token_codebook: None }).unwrap();
    let mut w = index.writer().unwrap();
    let docs = [("l", "Liberia is a country in West Africa"), ("b", "Libya borders Egypt"), ("x", "Football results")];
    for (i, (key, body)) in docs.into_iter().enumerate() {
        let mut v = vec![0.0; DIM];
        v[i] = 1.0;
        w.add(Document::new(key, body).with_lang("eng").with_vector(v)).unwrap();
    }
    w.commit().unwrap();
    // Kinyarwanda spells the name with -iya; the table knows neither word.
    let req = SearchRequest::new("igihugu cya Liberiya").with_mode(Mode::Bm25).with_query_lang("hau").with_k(3);
    let psq = Searcher::for_index(&index).with_translation_table(Arc::new(table()));
    let hits = psq.search(&req).unwrap().hits;
    assert_eq!(hits.iter().map(|h| h.key.as_str()).collect::<Vec<_>>(), ["l"], "{hits:?}");
    let terms = psq.translated_query(&req).unwrap().unwrap();
    let liberia = terms.iter().find(|t| t.term == "liberia").expect("a spelling match");
    assert!(liberia.translated && liberia.from == ["liberiya"]);
    assert_eq!(liberia.weight, optical::translate::DEFAULT_PSQ_SPELLING_WEIGHT);
    // Words shorter than five letters ("cya") and words an English document has get none.
    assert_eq!(terms.iter().filter(|t| t.translated).count(), 1, "{terms:?}");
    let off = psq.with_psq_spelling_weight(0.0);
    assert!(off.search(&req).unwrap().hits.is_empty());
}

/// The terms `searcher` searches for `req` after translation.
fn translated_terms(searcher: &Searcher, req: &SearchRequest) -> Vec<String> {
    searcher.translated_query(req).unwrap().unwrap().into_iter().map(|t| t.term).collect()
}

#[test]
fn translations_into_the_index_s_most_common_terms_are_left_out() {
    // 120 documents: every one has "the", one has "water", 40 have "river" (idf ≈ 1.1).
    let tmp = tempfile::tempdir().unwrap();
    let big = Index::create(tmp.path(), IndexConfig { dim: Some(DIM), elem: VectorElem::F32, encoder: None, token_codebook: None }).unwrap();
    let mut w = big.writer().unwrap();
    for i in 0..120 {
        let body = match i {
            0 => "the water of the well".to_string(),
            1..=40 => format!("the river number {i}"),
            _ => format!("the report number {i}"),
        };
        w.add(Document::new(format!("d{i}"), body).with_lang("eng").with_vector(vec![1.0, 0.0, 0.0, 0.0])).unwrap();
    }
    w.commit().unwrap();
    let mut t = TranslationTable::new("hau", "eng", "test");
    t.insert("ruwa", vec![("the".into(), 0.5), ("water".into(), 0.3), ("river".into(), 0.2)]);
    let req = SearchRequest::new("ruwa").with_mode(Mode::Bm25).with_query_lang("hau").with_k(5);
    let terms = |min_idf: f32| {
        translated_terms(&Searcher::for_index(&big).with_translation_table(Arc::new(t.clone())).with_psq_min_idf(min_idf), &req)
    };
    assert_eq!(terms(0.0), vec!["the", "water", "river"], "0 keeps every translation");
    assert_eq!(terms(1.0), vec!["water", "river"], "\"the\" is in every document (idf ≈ 0.004)");
    assert_eq!(terms(1.5), vec!["water"], "\"river\" is in a third of them (idf ≈ 1.1)");
    // The default cut applies, and the water document still ranks first.
    let psq = Searcher::for_index(&big).with_translation_table(Arc::new(t.clone()));
    assert_eq!(psq.translated_query(&req).unwrap().unwrap().len(), 2);
    assert_eq!(psq.search(&req).unwrap().hits[0].key, "d0");
    // In a small index document frequencies say little: nothing is left out.
    let small = tempfile::tempdir().unwrap();
    let small = index(small.path());
    let s = Searcher::for_index(&small).with_translation_table(Arc::new(t)).with_psq_min_idf(1.0);
    assert_eq!(s.translated_query(&req).unwrap().unwrap().len(), 3);
}

#[test]
fn a_translated_query_searches_only_its_heaviest_terms_after_the_idf_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let index = index(tmp.path());
    let mut t = TranslationTable::new("hau", "eng", "test");
    t.insert("ruwa", vec![("water".into(), 0.6), ("clean".into(), 0.3), ("home".into(), 0.1)]);
    t.insert("gari", vec![("town".into(), 0.5), ("council".into(), 0.4), ("monday".into(), 0.1)]);
    let req = SearchRequest::new("ruwa gari Abuja").with_mode(Mode::Bm25).with_query_lang("hau").with_k(5);
    let terms = |max: usize| {
        translated_terms(&Searcher::for_index(&index).with_translation_table(Arc::new(t.clone())).with_psq_max_terms(max), &req)
    };
    assert_eq!(terms(2), vec!["water", "town", "abuja"], "the two heaviest, and the untranslated name");
    assert_eq!(terms(4), vec!["water", "town", "council", "clean", "abuja"]);
    assert_eq!(terms(100).len(), 7);
    // The default cap (16) leaves a query this short whole.
    let s = Searcher::for_index(&index).with_translation_table(Arc::new(t));
    assert_eq!(s.translated_query(&req).unwrap().unwrap().len(), 7);
}

#[test]
fn table_files_round_trip_and_corruption_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("hau.tsv");
    let t = table();
    t.write(&path).unwrap();
    assert_eq!(TranslationTable::read(&path).unwrap(), t);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("water", "waters", 1)).unwrap();
    let err = format!("{:#}", TranslationTable::read(&path).unwrap_err());
    assert!(err.contains(&path.display().to_string()) && err.contains("checksum mismatch"), "{err}");
    std::fs::write(&path, "").unwrap();
    let err = format!("{:#}", TranslationTable::read(&path).unwrap_err());
    assert!(err.contains("hau.tsv") && err.contains("line 1"), "{err}");
}

proptest::proptest! {
    /// The table parser reads bytes from disk: no input may make it panic, and an edited row is
    /// always refused (the checksum covers every row).
    #[test]
    fn table_parsing_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
        let _ = TranslationTable::parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn any_edit_of_a_row_is_refused(pos in 0usize..1000, byte in 32u8..127) {
        let text = table().to_tsv().unwrap();
        let body_start = text.match_indices('\n').nth(5).unwrap().0 + 1;
        let at = body_start + pos % (text.len() - body_start);
        let mut edited = text.clone().into_bytes();
        proptest::prop_assume!(edited[at] != byte && edited[at] != b'\n' && edited[at] != b'\t');
        edited[at] = byte;
        let edited = String::from_utf8(edited).unwrap();
        proptest::prop_assert!(TranslationTable::parse(&edited).is_err());
    }
}

#[test]
fn fused_legs_rank_as_the_search_does() {
    let tmp = tempfile::tempdir().unwrap();
    let index = index(tmp.path());
    let searcher = Searcher::for_index(&index).with_translation_table(Arc::new(table()));
    for fusion in [
        Fusion::Rrf { k: 60.0 },
        Fusion::Linear { dense_weight: 0.3 },
        Fusion::ZScore { dense_weight: 0.7 },
        Fusion::Confidence { prior: 0.6 },
        Fusion::ByLanguage { cross: 0.9, mono: 0.1 },
    ] {
        let req = SearchRequest::new("ruwa gari")
            .with_query_lang("hau")
            .with_mode(Mode::Hybrid)
            .with_query_vector(vec![0.1, 0.2, 0.9, 0.1])
            .with_fusion(fusion)
            .with_k(4);
        let legs = searcher.hybrid_legs(&req).unwrap();
        assert!(legs.cross_lingual, "a Hausa query with a table against English documents");
        assert_eq!(legs.dense.len(), 4, "every candidate has its dense score");
        assert_eq!(legs.bm25[0].0, "w");
        let fused: Vec<String> = fusion.fuse_for(&legs.bm25, &legs.dense, legs.cross_lingual).into_iter().map(|(k, _)| k).take(4).collect();
        let searched: Vec<String> = searcher.search(&req).unwrap().hits.into_iter().map(|h| h.key).collect();
        assert_eq!(fused, searched, "{fusion}");
    }
    // Without a table, a query counts as cross-lingual only when no document is in its language.
    let plain = Searcher::for_index(&index);
    let req = |lang: &str| SearchRequest::new("water").with_query_lang(lang).with_query_vector(vec![1.0, 0.0, 0.0, 0.0]);
    assert!(!plain.is_cross_lingual(&req("eng")).unwrap());
    assert!(plain.is_cross_lingual(&req("hau")).unwrap());
    assert!(!plain.is_cross_lingual(&SearchRequest::new("water")).unwrap());
}

#[test]
fn psq_build_and_search_explain_through_the_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let lines: Vec<String> = bitext().iter().map(|p| format!("{}\t{}", p.foreign, p.english)).collect();
    let bitext = tmp.path().join("hau.train.tsv");
    std::fs::write(&bitext, lines.join("\n") + "\n").unwrap();
    let table = tmp.path().join("psq/hau.tsv");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_optical")).args(args).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, _, err) = run(&["psq", "build", "--bitext", bitext.to_str().unwrap(), "--lang", "hau", "--out", table.to_str().unwrap(), "--min-count", "1", "--iterations", "10"]);
    assert!(ok, "{err}");
    assert!(err.contains("wrote") && err.contains("translations"), "{err}");
    let (ok, out, err) = run(&["psq", "translate", table.to_str().unwrap(), "ruwa Kano"]);
    assert!(ok, "{err}");
    assert!(out.lines().next().unwrap().starts_with("water"), "{out}");
    assert!(out.contains("kano") && out.contains("kept"), "{out}");
    assert!(out.contains("dense query: ruwa Kano water\n"), "the gloss: each translated word's best English word: {out}");

    let idx = tmp.path().join("idx");
    drop(index(&idx));
    let (ok, out, err) = run(&[
        "search", idx.to_str().unwrap(), "ruwa", "--mode", "bm25", "--query-lang", "hau", "--psq", table.to_str().unwrap(), "--explain",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("translated query (PSQ): water:"), "{out}");
    assert!(out.lines().nth(1).unwrap().contains(" w "), "{out}");
    // `--psq none` searches the words as they are: nothing matches.
    let (ok, out, err) = run(&["search", idx.to_str().unwrap(), "ruwa", "--mode", "bm25", "--query-lang", "hau", "--psq", "none"]);
    assert!(ok, "{err}");
    assert!(out.contains("no results"), "{out}");
    // A corrupt table is refused, naming it.
    std::fs::write(&table, "# optical-translation-table 1\n").unwrap();
    let (ok, _, err) = run(&["search", idx.to_str().unwrap(), "ruwa", "--mode", "bm25", "--query-lang", "hau", "--psq", table.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("hau.tsv") && err.contains("line 2"), "{err}");
}

#[test]
fn translations_search_titles_in_bm25_mode_and_only_bodies_in_the_hybrid_leg() {
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::create(tmp.path(), IndexConfig { dim: Some(DIM), elem: VectorElem::F32, encoder: None, token_codebook: None }).unwrap();
    let mut w = index.writer().unwrap();
    w.add(Document::new("titled", "Rivers and lakes of the region").with_title("Water").with_lang("eng").with_vector(vec![1.0, 0.0, 0.0, 0.0]))
        .unwrap();
    w.add(Document::new("body", "Clean water reaches every home").with_title("Homes").with_lang("eng").with_vector(vec![0.0, 1.0, 0.0, 0.0]))
        .unwrap();
    w.add(Document::new("other", "Football results").with_title("Sport").with_lang("eng").with_vector(vec![0.0, 0.0, 1.0, 0.0]))
        .unwrap();
    w.commit().unwrap();
    let mut t = TranslationTable::new("hau", "eng", "test");
    t.insert("ruwa", vec![("water".into(), 1.0)]);
    let s = Searcher::for_index(&index).with_translation_table(Arc::new(t));
    let req = SearchRequest::new("ruwa").with_query_lang("hau").with_k(5);
    let bm25: Vec<String> = s.search(&req.clone().with_mode(Mode::Bm25)).unwrap().hits.into_iter().map(|h| h.key).collect();
    assert_eq!(bm25.len(), 2, "BM25 mode finds the title match too: {bm25:?}");
    assert!(bm25.contains(&"titled".to_string()));
    let legs = s.hybrid_legs(&req.with_mode(Mode::Hybrid).with_query_vector(vec![0.0, 0.0, 1.0, 0.0])).unwrap();
    let keys: Vec<&str> = legs.bm25.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["body"], "the hybrid leg searches translations in bodies only");
}
