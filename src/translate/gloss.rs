//! Word-by-word English readings of a query: its gloss, appended for the dense encoder, and its
//! rendering, read on its own by the rerank stage ([`rendered_query`]).
//!
//! The student reads a Hausa or Yoruba question less well than the teacher reads English. Appending
//! each query word's most probable English translation (from the same table as PSQ) gives the
//! encoder the English words it knows best, alongside the original words it was distilled on:
//! with the shipped Hausa table, `A wace shekara aka samu yancin kai a kasar Najeriya?` is encoded
//! as `A wace shekara aka samu yancin kai a kasar Najeriya? in what year the the independent the
//! in country nigeria`. On the AfriQA dev sets that lifted the dense leg's nDCG@10 from 0.640 to
//! 0.660, and hybrid's from 0.666 to 0.679 (docs/search.md, "Query glosses").
//!
//! Tables hold stemmed English terms (`figur`), the words BM25 matches; a gloss needs words the
//! encoder's tokenizer knows (`figure`), so a table also records the English word each term was
//! most often written as in its bitext ([`english_written_forms`]).
use std::collections::{BTreeMap, HashMap};

use tantivy::tokenizer::Language;

use super::table::TranslationTable;
use super::words::source_words_analyzer;
use crate::engine::text::{analyze_spans, stemmed_analyzer};

/// For each stemmed English term of `texts`, the lowercased word it was most often written as
/// (ties: the alphabetically first), e.g. `figur` → `figure`.
pub fn english_written_forms<'a>(texts: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, String> {
    let mut analyzer = stemmed_analyzer(Language::English);
    let mut counts: HashMap<String, HashMap<String, usize>> = HashMap::new();
    for text in texts {
        for (term, span) in analyze_spans(&mut analyzer, text) {
            let Some(word) = text.get(span) else { continue };
            *counts.entry(term).or_default().entry(word.to_lowercase()).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .filter_map(|(term, words)| {
            let best = words.into_iter().max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))?;
            Some((term, best.0))
        })
        .collect()
}

/// The query's gloss: for each query word in order (the [`source_words_analyzer`] words a PSQ
/// query looks up), the English word of its most probable translation; words the table lacks
/// (names, numbers) are left out, since the query text already carries them. Empty when no
/// word has a translation.
pub fn gloss_query(table: &TranslationTable, text: &str) -> String {
    gloss_words(table, &query_words(text))
}

fn query_words(text: &str) -> Vec<String> {
    analyze_spans(&mut source_words_analyzer(), text).into_iter().map(|(w, _)| w).collect()
}

fn gloss_words(table: &TranslationTable, words: &[String]) -> String {
    let gloss: Vec<&str> = words.iter().filter_map(|w| best_translation(table, w)).collect();
    gloss.join(" ")
}

/// The English word of `word`'s most probable translation, when the table has one.
fn best_translation<'t>(table: &'t TranslationTable, word: &str) -> Option<&'t str> {
    table.get(word).and_then(<[_]>::first).map(|(term, _)| table.written_form(term))
}

/// Queries of more words than this are encoded as written. A question of a few words gains
/// from the English words of its gloss; a whole sentence already gives the encoder its
/// context, and a gloss as long again mostly adds the table's mistakes, which the BM25 leg
/// shares. On the dev sets (docs/search.md, "Query glosses"), glossing every query lifted the
/// AfriQA questions (6–8 words) about as much as glossing those up to 12 words did (hybrid
/// 0.680 against 0.678), and cost the SIB sentences (25 words) 0.0075 nDCG@10 in hybrid
/// search; with this limit, 0.0003.
pub const MAX_GLOSSED_QUERY_WORDS: usize = 12;

/// The text the dense encoder reads for a query: the query, then its gloss when the query has
/// at most [`MAX_GLOSSED_QUERY_WORDS`] words and the table translates any of them.
pub fn glossed_query(table: &TranslationTable, text: &str) -> String {
    // The query is analysed once: for its length and for its gloss.
    let words = query_words(text);
    let gloss = if words.len() <= MAX_GLOSSED_QUERY_WORDS { gloss_words(table, &words) } else { String::new() };
    if gloss.is_empty() { text.to_string() } else { format!("{text} {gloss}") }
}

/// The query rendered word by word in English, for the rerank stage's second set of query rows:
/// each word replaced by the English word of its most probable translation, and kept as written
/// where the table has none or where it is capitalised after the query's first word (a name:
/// tables learned from a few hundred questions translate names into other names, `Micheal` →
/// `jordan`). `Yayan Micheal Jackson nawa?` → `children Micheal Jackson how`. Unlike
/// [`gloss_query`] it keeps every word in place, since it is read on its own.
pub fn rendered_query(table: &TranslationTable, text: &str) -> String {
    let words = analyze_spans(&mut source_words_analyzer(), text);
    let rendered: Vec<&str> = words
        .iter()
        .enumerate()
        .map(|(i, (word, span))| {
            let written = text.get(span.clone()).unwrap_or(word);
            let name = i > 0 && written.chars().next().is_some_and(char::is_uppercase);
            if name { written } else { best_translation(table, word).unwrap_or(written) }
        })
        .collect();
    rendered.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_forms_are_the_most_frequent_spelling_of_each_stem() {
        let forms = english_written_forms(["The figures show a figure", "Figures again; running"]);
        assert_eq!(forms.get("figur").map(String::as_str), Some("figures"));
        assert_eq!(forms.get("run").map(String::as_str), Some("running"));
    }

    #[test]
    fn a_gloss_follows_the_query_order_and_skips_untranslated_words() {
        let mut table = TranslationTable::new("hau", "eng", "test");
        table.insert("yayan", vec![("children".into(), 0.7), ("child".into(), 0.3)]);
        table.insert("nawa", vec![("mani".into(), 0.4), ("how".into(), 0.6)]);
        table.set_written_forms(BTreeMap::from([("mani".to_string(), "many".to_string())]));
        assert_eq!(gloss_query(&table, "Yayan Micheal Jackson nawa?"), "children how");
        table.insert("nawa", vec![("mani".into(), 0.9)]);
        assert_eq!(glossed_query(&table, "Yayan Jackson nawa?"), "Yayan Jackson nawa? children many");
        assert_eq!(glossed_query(&table, "Micheal Jackson"), "Micheal Jackson");
        let sentence = ["nawa"; MAX_GLOSSED_QUERY_WORDS + 1].join(" ");
        assert_eq!(glossed_query(&table, &sentence), sentence, "a long query is encoded as written");
        let question = ["nawa"; MAX_GLOSSED_QUERY_WORDS].join(" ");
        assert_ne!(glossed_query(&table, &question), question);
    }

    #[test]
    fn a_rendering_translates_in_place_and_keeps_names_and_unknown_words() {
        let mut table = TranslationTable::new("hau", "eng", "test");
        table.insert("yayan", vec![("children".into(), 0.7)]);
        table.insert("nawa", vec![("how".into(), 0.6)]);
        table.insert("micheal", vec![("jordan".into(), 0.5)]);
        // `Micheal` has a translation but is capitalised after the first word: a name, kept.
        assert_eq!(rendered_query(&table, "Yayan Micheal Jackson nawa?"), "children Micheal Jackson how");
        // The first word is translated whatever its case; a word the table lacks stays.
        assert_eq!(rendered_query(&table, "Nawa 1984"), "how 1984");
    }
}
