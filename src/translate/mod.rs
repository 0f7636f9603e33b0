//! Query translation for the BM25 leg: probabilistic structured queries (PSQ).
//!
//! A Hausa question shares almost no words with English passages, and an Amharic one shares no
//! script, so plain BM25 finds nothing for them. PSQ (Darwish & Oard; Patapsco) replaces each
//! query word `f` by the English words `e` it translates to, weighted by `p(e | f)` learned from
//! parallel text. Optical builds `p(e | f)` with IBM Model 1 ([`model1`]) over the same analyzers
//! the index uses (the query side as Unicode words, the English side stemmed), stores it as a
//! checksummed TSV ([`table`]) that travels with the shipped student, and turns a query into a
//! weighted disjunction of English terms ([`query`]).
pub mod model1;
pub mod query;
pub mod table;

pub use model1::{Model1Options, train_model1};
pub use query::{TranslatedTerm, psq_query, translate_query};
pub use table::{Pruning, TranslationTable, read_tables, table_files};
