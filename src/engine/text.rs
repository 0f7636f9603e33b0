//! tantivy schema, per-language analyzers, and the BM25 queries built over them.
//!
//! tantivy's default tokenizer splits on every character that is not alphanumeric, which tears
//! apart words whose combining marks are not `Alphabetic` — the Devanagari virama (`्`) and nukta
//! (`़`), so Marathi conjuncts such as `श्वास` fall into pieces. Optical
//! therefore tokenizes by Unicode word boundaries (UAX #29, `unicode-segmentation`), lowercases,
//! and stems where a stemmer exists.
//!
//! Field layout: a document is indexed either in `title_words`/`body_words` with the
//! language-neutral [`WORDS`] analyzer or, when its language is English, in `title_eng`/`body_eng`
//! with the English-stemmed [`ENGLISH`] analyzer; `title`/`body` store the text for display. A
//! query is analysed with both analyzers and run as one disjunction over the four fields, so
//! English documents get stemmed matching and every other language matches on exact words.
//! Measured on SciFact test (BM25 nDCG@10, `tests/engine_scifact.rs`): unstemmed words 0.6485,
//! words + stemmed fields summed 0.6630, stemmed only 0.6658 — hence one analyzer per document.

use std::collections::HashSet;

use anyhow::{Context, Result};
use tantivy::query::{BooleanQuery, ConstScoreQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, Stemmer, TextAnalyzer, Token, TokenStream, Tokenizer,
    TokenizerManager,
};
use tantivy::Term;
use unicode_segmentation::{UnicodeSegmentation, UnicodeWordIndices};

/// Name of the language-neutral analyzer: Unicode words, lowercased, overlong tokens dropped.
pub const WORDS: &str = "optical_words";
/// Name of the English analyzer: [`WORDS`] followed by the English (Snowball) stemmer.
pub const ENGLISH: &str = "optical_eng";

/// Tokens longer than this many bytes are dropped (URLs, base64 blobs). Generous because
/// Ethiopic and Devanagari take three bytes a character.
pub(crate) const MAX_TOKEN_BYTES: usize = 120;

/// Splits text at Unicode word boundaries (UAX #29) and keeps the segments that contain a letter
/// or digit (`unicode_words()` semantics, with byte offsets for highlighting), minus leading and
/// trailing underscores.
#[derive(Clone, Default)]
pub struct UnicodeWordTokenizer {
    token: Token,
}

/// Token stream of [`UnicodeWordTokenizer`].
pub struct UnicodeWordStream<'a> {
    words: UnicodeWordIndices<'a>,
    token: &'a mut Token,
}

impl Tokenizer for UnicodeWordTokenizer {
    type TokenStream<'a> = UnicodeWordStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> UnicodeWordStream<'a> {
        self.token.reset();
        UnicodeWordStream { words: text.unicode_word_indices(), token: &mut self.token }
    }
}

impl TokenStream for UnicodeWordStream<'_> {
    fn advance(&mut self) -> bool {
        // UAX #29 joins `_` (ExtendNumLet) to words; edge underscores are markup debris
        // ("ፑዬሁ_"), not part of the word.
        let (offset, word) = loop {
            let (offset, word) = match self.words.next() {
                Some(w) => w,
                None => return false,
            };
            let trimmed = word.trim_start_matches('_');
            let offset = offset + (word.len() - trimmed.len());
            let trimmed = trimmed.trim_end_matches('_');
            if !trimmed.is_empty() {
                break (offset, trimmed);
            }
        };
        self.token.text.clear();
        self.token.text.push_str(word);
        self.token.offset_from = offset;
        self.token.offset_to = offset + word.len();
        self.token.position = self.token.position.wrapping_add(1);
        true
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

/// The language-neutral analyzer registered as [`WORDS`].
pub fn words_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(UnicodeWordTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .build()
}

/// A Unicode-words analyzer with the Snowball stemmer of `language`.
pub fn stemmed_analyzer(language: Language) -> TextAnalyzer {
    TextAnalyzer::builder(UnicodeWordTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .filter(Stemmer::new(language))
        .build()
}

/// Registers Optical's analyzers by name on a tantivy tokenizer manager. tantivy does not persist
/// custom analyzers, so this runs every time an index is created or opened.
pub fn register_analyzers(manager: &TokenizerManager) {
    manager.register(WORDS, words_analyzer());
    manager.register(ENGLISH, stemmed_analyzer(Language::English));
}

/// The Snowball stemmer for a language code (ISO 639-3, ISO 639-1 or the English name), if
/// tantivy has one. Only English has its own indexed field today; the others are here so that a
/// caller can analyse text the same way.
pub fn stemmer_language(lang: &str) -> Option<Language> {
    Some(match lang.to_ascii_lowercase().as_str() {
        "eng" | "en" | "english" => Language::English,
        "deu" | "ger" | "de" | "german" => Language::German,
        "fra" | "fre" | "fr" | "french" => Language::French,
        "fin" | "fi" | "finnish" => Language::Finnish,
        "spa" | "es" | "spanish" => Language::Spanish,
        "ita" | "it" | "italian" => Language::Italian,
        "por" | "pt" | "portuguese" => Language::Portuguese,
        "nld" | "dut" | "nl" | "dutch" => Language::Dutch,
        "rus" | "ru" | "russian" => Language::Russian,
        "ara" | "ar" | "arabic" => Language::Arabic,
        "tam" | "ta" | "tamil" => Language::Tamil,
        "tur" | "tr" | "turkish" => Language::Turkish,
        _ => return None,
    })
}

/// True when documents in `lang` also go into the English-stemmed fields.
pub fn is_english(lang: &str) -> bool {
    matches!(stemmer_language(lang), Some(Language::English))
}

/// Runs `text` through an analyzer and returns each token's text with its byte span in `text`.
pub fn analyze_spans(analyzer: &mut TextAnalyzer, text: &str) -> Vec<(String, std::ops::Range<usize>)> {
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        let token = stream.token();
        out.push((token.text.clone(), token.offset_from..token.offset_to));
    }
    out
}

/// Runs `text` through an analyzer and returns the token texts (handy for tests and debugging).
pub fn analyze(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

/// Field names of the tantivy schema.
pub mod field {
    /// External key: raw string, indexed (for deletes), stored, fast (to return it with hits).
    pub const KEY: &str = "key";
    /// Internal id: u64 fast field linking a document to its vector row; stored and indexed.
    pub const ID: &str = "id";
    /// Language code: raw string, indexed (filterable), stored, fast.
    pub const LANG: &str = "lang";
    /// Title, stored for display (not indexed).
    pub const TITLE: &str = "title";
    /// Body, stored for display (not indexed).
    pub const BODY: &str = "body";
    /// Title of non-English documents, language-neutral analyzer (not stored).
    pub const TITLE_WORDS: &str = "title_words";
    /// Body of non-English documents, language-neutral analyzer (not stored).
    pub const BODY_WORDS: &str = "body_words";
    /// Title of English documents, English-stemmed (not stored).
    pub const TITLE_ENG: &str = "title_eng";
    /// Body of English documents, English-stemmed (not stored).
    pub const BODY_ENG: &str = "body_eng";
    /// The passage's token codes ([`crate::encoder::codebook`]), stored bytes; in the schema of
    /// indexes created since the late-interaction rerank reads stored codes (older ones lack it).
    pub const TOKEN_CODES: &str = "token_codes";
}

/// The tantivy schema of an Optical index and its fields.
#[derive(Clone, Debug)]
pub(crate) struct TextFields {
    /// The schema itself.
    pub schema: Schema,
    /// See [`field::KEY`].
    pub key: Field,
    /// See [`field::ID`].
    pub id: Field,
    /// See [`field::LANG`].
    pub lang: Field,
    /// See [`field::TITLE`].
    pub title: Field,
    /// See [`field::BODY`].
    pub body: Field,
    /// See [`field::TITLE_WORDS`].
    pub title_words: Field,
    /// See [`field::BODY_WORDS`].
    pub body_words: Field,
    /// See [`field::TITLE_ENG`].
    pub title_eng: Field,
    /// See [`field::BODY_ENG`].
    pub body_eng: Field,
    /// See [`field::TOKEN_CODES`]; `None` in an index created before the field existed.
    pub token_codes: Option<Field>,
}

impl TextFields {
    /// Builds the schema for a new index.
    pub(crate) fn build() -> TextFields {
        let mut b = Schema::builder();
        b.add_text_field(field::KEY, STRING | STORED | FAST);
        b.add_u64_field(field::ID, INDEXED | STORED | FAST);
        b.add_text_field(field::LANG, STRING | STORED | FAST);
        // Term frequencies are all BM25 needs; positions would only serve phrase queries.
        let words = TextFieldIndexing::default()
            .set_tokenizer(WORDS)
            .set_index_option(IndexRecordOption::WithFreqs);
        let eng = TextFieldIndexing::default()
            .set_tokenizer(ENGLISH)
            .set_index_option(IndexRecordOption::WithFreqs);
        b.add_text_field(field::TITLE, STORED);
        b.add_text_field(field::BODY, STORED);
        let words_only = TextOptions::default().set_indexing_options(words);
        b.add_text_field(field::TITLE_WORDS, words_only.clone());
        b.add_text_field(field::BODY_WORDS, words_only);
        let eng_only = TextOptions::default().set_indexing_options(eng);
        b.add_text_field(field::TITLE_ENG, eng_only.clone());
        b.add_text_field(field::BODY_ENG, eng_only);
        b.add_bytes_field(field::TOKEN_CODES, STORED);
        TextFields::from_schema(&b.build()).expect("the schema just built has every field")
    }

    /// Finds the fields in the schema of an existing index; errors name a missing field.
    pub(crate) fn from_schema(schema: &Schema) -> Result<TextFields> {
        let get = |name: &str| {
            schema
                .get_field(name)
                .with_context(|| format!("tantivy schema has no field `{name}`: not an Optical index?"))
        };
        Ok(TextFields {
            schema: schema.clone(),
            key: get(field::KEY)?,
            id: get(field::ID)?,
            lang: get(field::LANG)?,
            title: get(field::TITLE)?,
            body: get(field::BODY)?,
            title_words: get(field::TITLE_WORDS)?,
            body_words: get(field::BODY_WORDS)?,
            title_eng: get(field::TITLE_ENG)?,
            token_codes: schema.get_field(field::TOKEN_CODES).ok(),
            body_eng: get(field::BODY_ENG)?,
        })
    }
}

/// Which fields a BM25 query runs over. The default ([`Bm25Fields::Both`]) reaches every
/// document; the others restrict a query to one analyzer's documents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Bm25Fields {
    /// `title_words`/`body_words` only (non-English documents).
    Words,
    /// English-stemmed `title_eng`/`body_eng` only (English documents).
    English,
    /// All four fields in one disjunction.
    #[default]
    Both,
}

/// Builds the BM25 query for `text`: a disjunction of term queries over the chosen fields, each
/// term analysed with its field's analyzer. With `lang`, only documents of that language match.
/// Returns `None` when the text has no searchable token.
pub(crate) fn bm25_query(
    fields: &TextFields,
    text: &str,
    lang: Option<&str>,
    which: Bm25Fields,
) -> Option<Box<dyn Query>> {
    let clauses = bm25_clauses(fields, text, which);
    if clauses.is_empty() {
        return None;
    }
    Some(filter_lang(fields, Box::new(BooleanQuery::new(clauses)), lang))
}

/// The SHOULD term clauses of [`bm25_query`], for callers that add clauses of their own. Keep
/// them in one flat disjunction: tantivy prunes with block-WAND only when every clause of a
/// boolean query is a term query, and a nested boolean query turns that off.
pub(crate) fn bm25_clauses(fields: &TextFields, text: &str, which: Bm25Fields) -> Vec<(Occur, Box<dyn Query>)> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    let mut add = |analyzer: &mut TextAnalyzer, targets: &[Field]| {
        // A repeated query word counts once per field: duplicate SHOULD clauses would double it.
        let tokens: HashSet<String> = analyze(analyzer, text).into_iter().collect();
        for token in tokens {
            for &f in targets {
                let term = Term::from_field_text(f, &token);
                clauses.push((Occur::Should, Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs))));
            }
        }
    };
    if matches!(which, Bm25Fields::Words | Bm25Fields::Both) {
        add(&mut words_analyzer(), &[fields.title_words, fields.body_words]);
    }
    if matches!(which, Bm25Fields::English | Bm25Fields::Both) {
        add(&mut stemmed_analyzer(Language::English), &[fields.title_eng, fields.body_eng]);
    }
    clauses
}

/// `query` restricted to documents in `lang` (the filter matches but adds nothing to the score);
/// `query` itself when `lang` is `None`.
pub(crate) fn filter_lang(fields: &TextFields, query: Box<dyn Query>, lang: Option<&str>) -> Box<dyn Query> {
    match lang {
        None => query,
        Some(lang) => {
            let filter = TermQuery::new(Term::from_field_text(fields.lang, lang), IndexRecordOption::Basic);
            let filter: Box<dyn Query> = Box::new(ConstScoreQuery::new(Box::new(filter), 0.0));
            Box::new(BooleanQuery::new(vec![(Occur::Must, query), (Occur::Must, filter)]))
        }
    }
}

/// Reads a document's external key and internal id from the fast fields of its segment.
pub(crate) fn key_and_id(seg: &tantivy::SegmentReader, doc: tantivy::DocId) -> Result<(String, u64)> {
    let ids = seg.fast_fields().u64(field::ID).context("opening the `id` fast field")?;
    let keys = seg
        .fast_fields()
        .str(field::KEY)
        .context("opening the `key` fast field")?
        .context("the `key` fast field is missing")?;
    let id = ids.first(doc).with_context(|| format!("document {doc} has no id"))?;
    let mut key = String::new();
    let ord = keys.term_ords(doc).next().with_context(|| format!("document {doc} has no key"))?;
    keys.ord_to_str(ord, &mut key).context("reading the `key` fast field")?;
    Ok((key, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_words_keep_devanagari_words_whole() {
        let mut a = words_analyzer();
        // The virama is not alphanumeric: tantivy's SimpleTokenizer breaks conjuncts apart.
        assert_eq!(analyze(&mut a, "मराठी श्वास"), vec!["मराठी", "श्वास"]);
        let mut simple = TextAnalyzer::from(tantivy::tokenizer::SimpleTokenizer::default());
        assert_eq!(analyze(&mut simple, "मराठी श्वास"), vec!["मराठी", "श", "वास"]);
    }

    #[test]
    fn english_stems_and_lowercases() {
        let mut a = stemmed_analyzer(Language::English);
        assert_eq!(analyze(&mut a, "Running RUNS"), vec!["run", "run"]);
    }
}
