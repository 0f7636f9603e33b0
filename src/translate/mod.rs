//! Query translation for the BM25 leg: probabilistic structured queries (PSQ).
//!
//! A Hausa question shares almost no words with English passages, and an Amharic one shares no
//! script, so plain BM25 finds nothing for them. PSQ (Darwish & Oard; Patapsco) replaces each
//! query word `f` by the English words `e` it translates to, weighted by `p(e | f)` learned from
//! parallel text. Optical builds `p(e | f)` in two ways over the same analyzers the index uses
//! (the query side as Unicode words, the English side stemmed): IBM Model 1 ([`model1`]), and
//! from the OT plans between a student's and the teacher's token states ([`ot_plans`]). It stores
//! the table as a checksummed TSV ([`table`]) that travels with the shipped student, and turns a
//! query into a weighted disjunction of English terms ([`query`]).
use std::collections::HashMap;

pub mod gloss;
pub mod model1;
pub mod ot_plans;
pub mod query;
pub mod table;
pub mod words;

pub use gloss::{MAX_GLOSSED_QUERY_WORDS, gloss_query, glossed_query, rendered_query};
pub use model1::{Model1Options, train_model1};
pub use ot_plans::{OtPlanOptions, train_ot_plans};
pub(crate) use query::psq_query;
pub use query::{
    DEFAULT_PSQ_MAX_TERMS, DEFAULT_PSQ_MIN_IDF, DEFAULT_PSQ_SPELLING_WEIGHT, PsqFields, TranslatedTerm, heaviest_translations, translate_query};
pub use table::{Pruning, TranslationTable, read_tables, table_files};
pub use words::{fold, source_words_analyzer};

/// Words ↔ dense ids, in order of first sight: the vocabularies table builders count over.
#[derive(Default)]
struct Vocab {
    ids: HashMap<String, u32>,
    words: Vec<String>,
}

impl Vocab {
    fn id(&mut self, word: &str) -> u32 {
        if let Some(&id) = self.ids.get(word) {
            return id;
        }
        let id = self.words.len() as u32;
        self.ids.insert(word.to_string(), id);
        self.words.push(word.to_string());
        id
    }
}
