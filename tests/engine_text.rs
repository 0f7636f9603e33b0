//! Analyzers on real Amharic (Ethiopic), Marathi (Devanagari) and Swahili sentences from the
//! shared bitext, and BM25 over them through a real index.
mod common;

use std::path::Path;

use optical::engine::{Document, Index, IndexConfig};
use optical::engine::text::{analyze, stemmed_analyzer, words_analyzer};
use tantivy::tokenizer::{Language, SimpleTokenizer, TextAnalyzer};

/// (foreign, english) pairs from `<lang>.dev.tsv`.
fn pairs(data: &Path, lang: &str, n: usize) -> Vec<(String, String)> {
    std::fs::read_to_string(data.join(format!("bitext/{lang}.dev.tsv")))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .take(n)
        .collect()
}

/// A character that belongs inside a word: letters and digits, plus the Devanagari virama, nukta
/// and other marks (some of which are not alphanumeric) but not the dandas.
fn word_char(c: char) -> bool {
    c.is_alphanumeric() || (('\u{0900}'..='\u{097F}').contains(&c) && !matches!(c, '\u{0964}' | '\u{0965}' | '\u{0970}'))
}

/// The words of a sentence computed independently of UAX #29: whitespace-separated, trimmed of
/// punctuation, lowercased. `None` when a word has punctuation inside (where the two may differ).
fn expected_words(sentence: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for w in sentence.split_whitespace() {
        let t = w.trim_matches(|c: char| !word_char(c));
        if t.is_empty() {
            continue;
        }
        if !t.chars().all(word_char) {
            return None;
        }
        out.push(t.to_lowercase());
    }
    Some(out)
}

#[test]
fn real_sentences_tokenize_into_whole_words() {
    let Some(data) = common::shared_data() else { return };
    let mut words = words_analyzer();
    let mut simple = TextAnalyzer::from(SimpleTokenizer::default());
    for lang in ["amh", "mar", "swa"] {
        let (mut checked, mut simple_differs) = (0, 0);
        for (s, _) in pairs(&data, lang, 300) {
            let Some(expected) = expected_words(&s) else { continue };
            assert_eq!(analyze(&mut words, &s), expected, "{lang}: {s}");
            // tantivy's default tokenizer, lowercased, for comparison.
            let simple_tokens: Vec<String> = analyze(&mut simple, &s).into_iter().map(|t| t.to_lowercase()).collect();
            if simple_tokens != expected {
                simple_differs += 1;
            }
            checked += 1;
        }
        eprintln!("{lang}: {checked} sentences tokenized into whole words; tantivy's SimpleTokenizer differs on {simple_differs}");
        assert!(checked >= 100, "{lang}: only {checked} sentences checked");
        if lang == "mar" {
            // The virama is not alphanumeric: the default tokenizer tears conjuncts apart.
            assert!(simple_differs * 2 > checked, "mar: SimpleTokenizer differs on only {simple_differs}/{checked}");
        }
    }
    // Specific cases: the Ethiopic full stop (፡፡ / ።) and comma (፣) are not parts of words.
    assert_eq!(
        analyze(&mut words, "ሌሎች ሪፖርቶች ደግሞ የተገደሉትን ተማሪዎች ቁጥር ዐሥር ያደርሱታል፡፡"),
        vec!["ሌሎች", "ሪፖርቶች", "ደግሞ", "የተገደሉትን", "ተማሪዎች", "ቁጥር", "ዐሥር", "ያደርሱታል"]
    );
    assert_eq!(analyze(&mut words, "मात्र मला श्वास घेताना त्रास होत आहे").len(), 7);
    assert_eq!(analyze(&mut stemmed_analyzer(Language::English), "Patients were treated"), vec!["patient", "were", "treat"]);
}

#[test]
fn bm25_finds_real_sentences_by_their_words() {
    let Some(data) = common::shared_data() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::create(tmp.path(), IndexConfig::text_only()).unwrap();
    let mut w = index.writer().unwrap();
    let mut sets = Vec::new();
    for lang in ["amh", "mar", "swa"] {
        let p = pairs(&data, lang, 300);
        for (i, (s, e)) in p.iter().enumerate() {
            w.upsert(Document::new(format!("{lang}-{i}"), s.as_str()).with_lang(lang)).unwrap();
            w.upsert(Document::new(format!("{lang}-eng-{i}"), e.as_str()).with_lang("eng")).unwrap();
        }
        sets.push((lang, p));
    }
    w.commit().unwrap();
    let snap = index.snapshot();
    let mut analyzer = words_analyzer();
    for (lang, p) in &sets {
        let (mut top1, mut n) = (0, 0);
        for (i, (s, _)) in p.iter().enumerate() {
            let hits = common::bm25(&snap, s, 5, Some(lang)).unwrap();
            assert!(hits.iter().all(|h| h.key.starts_with(lang) && !h.key.contains("-eng-")), "lang filter leaked");
            // Duplicate sentences exist in the dev sets: accept any document with the same text.
            if let Some(h) = hits.first() {
                let body = snap.document(h.id).unwrap().unwrap().body;
                if h.key == format!("{lang}-{i}") || body == *s {
                    top1 += 1;
                }
            }
            n += 1;
            // Every hit for a single word really contains that word.
            if let Some(word) = analyze(&mut analyzer, s).into_iter().max_by_key(|t| t.chars().count()) {
                let hits = common::bm25(&snap, &word, 20, Some(lang)).unwrap();
                assert!(!hits.is_empty(), "{lang}: no hit for `{word}`");
                for h in hits {
                    let body = snap.document(h.id).unwrap().unwrap().body;
                    assert!(analyze(&mut analyzer, &body).contains(&word), "{lang}: hit {} lacks `{word}`", h.key);
                }
            }
        }
        eprintln!("{lang}: sentence as query finds itself first for {top1}/{n}");
        assert!(top1 * 100 >= n * 95, "{lang}: only {top1}/{n}");
    }
}
