//! A query translated through a [`TranslationTable`] into a BM25 query over the English fields.
//!
//! Each distinct query word `f` with translations becomes the English terms `e` weighted by
//! `p(e | f)` (a term reached from several words adds their weights) — the "boosted terms" form
//! of PSQ: `Σ_f Σ_e p(e | f) · BM25(e, d)`. A word without an entry (a name, a number, a word the
//! bitext never had) keeps its original form and is searched as plain BM25 would search it.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{IndexRecordOption, Term};

use super::table::TranslationTable;
use super::words::source_words_analyzer;
use crate::engine::text::{self, Bm25Fields, TextFields, analyze_spans};

/// Translations into terms with a BM25 idf below this in the searched index are left out of a
/// PSQ query (`Searcher::with_psq_min_idf`): chosen on the AfriQA dev sets (docs/search.md).
pub const DEFAULT_PSQ_MIN_IDF: f32 = 1.0;

/// At most this many translated terms of a PSQ query are searched, the heaviest ones
/// (`Searcher::with_psq_max_terms`): every term is a posting list the BM25 stage walks, and the
/// light ones add little to a score. Chosen on the AfriQA dev sets (docs/search.md).
pub const DEFAULT_PSQ_MAX_TERMS: usize = 16;

/// Weight shared by the English terms spelled like a query word no table translates and no English
/// document contains (`Searcher::with_psq_spelling_weight`): on the AfriQA dev sets 0.5 scored
/// above 0 and 1 (docs/search.md).
pub const DEFAULT_PSQ_SPELLING_WEIGHT: f32 = 0.5;

/// Which English fields a translated term searches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsqFields {
    /// Titles and bodies, as plain BM25 searches: the better ranking when BM25 ranks alone.
    TitleAndBody,
    /// Bodies only: the better BM25 leg of a hybrid search (on the AfriQA dev sets, hybrid
    /// nDCG@10 0.626 against 0.623 with titles, and half the clauses; docs/search.md). A term
    /// matching an article's title lifts every passage of the article alike, which the dense
    /// leg already knows; the body says which passage.
    Body,
}

/// One term of a translated query, for `--explain`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TranslatedTerm {
    /// The term searched: an English (stemmed) term, or the original word when untranslated.
    pub term: String,
    /// Its weight: Σ p(term | f) over the query words f that translate to it; 1 when untranslated.
    pub weight: f32,
    /// The query words it came from.
    pub from: Vec<String>,
    /// False for a query word kept in its original form.
    pub translated: bool,
}

/// The terms `text` turns into: translations first (by descending weight), then the words kept
/// as they are. Query words are [`source_words_analyzer`] words, the table's keys. A word the
/// table lacks takes the translations of the table's words spelled most like it
/// ([`TranslationTable::near`]), sharing its weight among them, and is kept too; a word split
/// at a case step (`yaseNetherlands`, `McBride`) is also kept whole when a part of it has no
/// translation, so a name written in one piece still matches as one.
pub fn translate_query(table: &TranslationTable, text: &str) -> Vec<TranslatedTerm> {
    let tokens = analyze_spans(&mut source_words_analyzer(), text);
    let mut words: Vec<String> = tokens.iter().map(|(w, _)| w.clone()).collect();
    words.sort();
    words.dedup();
    let mut translated: BTreeMap<String, (f32, Vec<String>)> = BTreeMap::new();
    let mut kept: Vec<String> = Vec::new();
    for f in words {
        let mut add = |e: &String, p: f32| {
            let entry = translated.entry(e.clone()).or_insert((0.0, Vec::new()));
            entry.0 += p;
            if entry.1.last() != Some(&f) {
                entry.1.push(f.clone());
            }
        };
        match table.get(&f) {
            Some(list) => list.iter().for_each(|(e, p)| add(e, *p)),
            None => {
                // The words spelled like it share its weight; it is also kept as written.
                let near = table.near(&f);
                for key in &near {
                    for (e, p) in table.get(key).unwrap_or_default() {
                        add(e, p / near.len() as f32);
                    }
                }
                kept.push(f);
            }
        }
    }
    for whole in split_words(&tokens) {
        if whole.iter().any(|part| table.get(part).is_none()) {
            kept.push(whole.concat());
        }
    }
    kept.sort();
    kept.dedup();
    let mut out: Vec<TranslatedTerm> = translated
        .into_iter()
        .map(|(term, (weight, from))| TranslatedTerm { term, weight, from, translated: true })
        .collect();
    out.sort_by(|a, b| b.weight.total_cmp(&a.weight).then_with(|| a.term.cmp(&b.term)));
    out.extend(kept.into_iter().map(|f| TranslatedTerm { term: f.clone(), weight: 1.0, from: vec![f], translated: false }));
    out
}

/// The words the analyzer split into parts: runs of tokens whose spans touch.
fn split_words(tokens: &[(String, std::ops::Range<usize>)]) -> Vec<Vec<&str>> {
    let mut runs: Vec<Vec<&str>> = Vec::new();
    let mut end = usize::MAX;
    for (word, span) in tokens {
        match runs.last_mut() {
            Some(run) if span.start == end => run.push(word),
            _ => runs.push(vec![word]),
        }
        end = span.end;
    }
    runs.retain(|run| run.len() > 1);
    runs
}

/// `terms` with at most `max` translated terms, the heaviest, first by descending weight (spelling
/// matches are appended after [`translate_query`]'s order); the words kept untranslated all stay,
/// after them.
pub fn heaviest_translations(mut terms: Vec<TranslatedTerm>, max: usize) -> Vec<TranslatedTerm> {
    // Stable: equal weights keep translate_query's order (by term).
    terms.sort_by(|a, b| b.translated.cmp(&a.translated).then_with(|| b.weight.total_cmp(&a.weight)));
    let mut translated = 0;
    terms
        .into_iter()
        .filter(|t| {
            if !t.translated {
                return true;
            }
            translated += 1;
            translated <= max
        })
        .collect()
}

/// The BM25 query of `terms`: translated terms as weighted term queries on the English fields
/// `which` names, kept words as plain BM25 would search them (every field, each with its
/// analyzer). `None` when there is nothing to search.
pub(crate) fn psq_query(
    fields: &TextFields,
    terms: &[TranslatedTerm],
    which: PsqFields,
    lang: Option<&str>,
) -> Option<Box<dyn Query>> {
    let english: &[_] = match which {
        PsqFields::TitleAndBody => &[fields.title_eng, fields.body_eng],
        PsqFields::Body => &[fields.body_eng],
    };
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for t in terms.iter().filter(|t| t.translated) {
        for &field in english {
            let q = TermQuery::new(Term::from_field_text(field, &t.term), IndexRecordOption::WithFreqs);
            clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(q), t.weight))));
        }
    }
    let kept: Vec<&str> = terms.iter().filter(|t| !t.translated).map(|t| t.term.as_str()).collect();
    // Flat, not a nested query: one disjunction of term queries keeps block-WAND pruning on.
    clauses.extend(text::bm25_clauses(fields, &kept.join(" "), Bm25Fields::Both));
    if clauses.is_empty() {
        return None;
    }
    Some(text::filter_lang(fields, Box::new(BooleanQuery::new(clauses)), lang))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_translate_and_unknown_words_are_kept() {
        let mut table = TranslationTable::new("hau", "eng", "test");
        table.insert("ruwa", vec![("water".into(), 0.8), ("rain".into(), 0.2)]);
        table.insert("sama", vec![("rain".into(), 0.5), ("sky".into(), 0.5)]);
        let terms = translate_query(&table, "Ruwa sama Abuja");
        let get = |t: &str| terms.iter().find(|x| x.term == t).unwrap();
        assert!((get("water").weight - 0.8).abs() < 1e-6);
        assert!((get("rain").weight - 0.7).abs() < 1e-6, "rain is reached from both words");
        assert_eq!(get("rain").from, vec!["ruwa", "sama"]);
        assert!(!get("abuja").translated);
        assert_eq!(terms[0].term, "water");
        assert_eq!(terms.last().unwrap().term, "abuja");
    }

    #[test]
    fn tone_marks_glued_prefixes_and_inflections_do_not_hide_a_word_from_the_table() {
        let mut table = TranslationTable::new("zul", "eng", "test");
        table.insert("yase", vec![("of".into(), 1.0)]);
        table.insert("ilu", vec![("town".into(), 1.0)]);
        table.insert("gwamnan", vec![("governor".into(), 1.0)]);
        let terms = translate_query(&table, "Ìlú yaseNetherlands McBride gwamna");
        let names: Vec<(&str, bool)> = terms.iter().map(|t| (t.term.as_str(), t.translated)).collect();
        assert_eq!(
            names,
            [
                ("governor", true),
                ("of", true),
                ("town", true),
                ("bride", false),
                ("gwamna", false),
                ("mc", false),
                ("mcbride", false),
                ("netherlands", false),
                ("yasenetherlands", false)
            ]
        );
    }

    #[test]
    fn the_cap_keeps_the_heaviest_translations_and_every_untranslated_word() {
        let mut table = TranslationTable::new("hau", "eng", "test");
        table.insert("ruwa", vec![("water".into(), 0.8), ("rain".into(), 0.2)]);
        table.insert("sama", vec![("sky".into(), 0.6), ("heaven".into(), 0.4)]);
        let terms = heaviest_translations(translate_query(&table, "ruwa sama Abuja Kano"), 2);
        let names: Vec<&str> = terms.iter().map(|t| t.term.as_str()).collect();
        assert_eq!(names, ["water", "sky", "abuja", "kano"]);
        // A heavier term appended later (a spelling match) still makes the cut.
        let mut terms = translate_query(&table, "ruwa sama Abuja");
        terms.push(TranslatedTerm { term: "abu".into(), weight: 0.9, from: vec!["abuja".into()], translated: true });
        let names: Vec<String> = heaviest_translations(terms, 2).into_iter().map(|t| t.term).collect();
        assert_eq!(names, ["abu", "water", "abuja"]);
        let all = heaviest_translations(translate_query(&table, "ruwa sama"), 10);
        assert_eq!(all.len(), 4);
    }
}
