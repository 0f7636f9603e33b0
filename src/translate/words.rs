//! The query-side words of translation: how a query (and the foreign side of bitext) is cut into
//! the words a translation table is keyed by.
//!
//! The index's [`WORDS`](crate::engine::text::WORDS) analyzer lowercases Unicode words and nothing
//! more, which is right for indexing but loses most of a query's words to three kinds of spelling
//! variation that AfriQA's questions are full of (measured on the dev questions against the
//! shipped tables, `docs/search.md`):
//!
//! - **Diacritics written or not.** The Yoruba bitext is fully tone-marked (`orílẹ̀-èdè`), the
//!   questions mostly are not (`orile ede`): 40 % of the Yoruba question words missed the table,
//!   15 % once Latin combining marks are dropped on both sides (dev questions, counted with a
//!   regex against the session-12 table). Only the Latin marks (U+0300–U+036F)
//!   go: Devanagari and Ethiopic signs are letters of their words.
//! - **Look-alike letters.** Twi is typed with the Latin open vowels `ɛ ɔ` or with the Greek
//!   epsilon `ε` and the small capital `ᴐ`; they are folded to the Latin letters.
//! - **Class prefixes glued to names.** Zulu writes `yaseNetherlands`, `uMiss`, `iNational`: the
//!   name is the word after the lowercase-to-uppercase step, and it is split off as a word of its
//!   own.
//!
//! What folding cannot reach — a name spelled the query language's way (`Liberiya`, `Nijeriya`),
//! an inflection the bitext never had (`gwamna` beside the table's `gwamnan`) — is found by
//! spelling: [`Spellings`] walks a sorted word set (a table's keys, an index's term dictionary)
//! for the words within [`spelling_distance`] edits.
use std::ops::Range;
use std::sync::OnceLock;

use levenshtein_automata::{DFA, Distance, LevenshteinAutomatonBuilder, SINK_STATE};

use tantivy::tokenizer::{
    PreTokenizedStream, PreTokenizedString, RemoveLongFilter, TextAnalyzer, Token, TokenStream, Tokenizer,
};
use unicode_normalization::UnicodeNormalization;
use crate::engine::text::{MAX_TOKEN_BYTES, UnicodeWordTokenizer};

/// The analyzer of the query side of translation: Unicode words split at lowercase-to-uppercase
/// steps, lowercased, with Latin diacritics and look-alike letters folded (see the module docs).
pub fn source_words_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SourceWordTokenizer::default()).filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES)).build()
}

/// `word` lowercased, with Latin combining marks dropped and look-alike letters folded: the form
/// a table key takes.
pub fn fold(word: &str) -> String {
    let lower: String = word.chars().map(fold_letter).collect::<String>().to_lowercase();
    if lower.is_ascii() {
        return lower;
    }
    lower.nfd().filter(|c| !is_latin_mark(*c)).nfc().collect()
}

/// The parts of `word` split before every uppercase letter that follows a lowercase one
/// (`yaseNetherlands` → `yase`, `Netherlands`); the word itself when it has no such step.
fn camel_parts(word: &str) -> Vec<(&str, Range<usize>)> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut previous_lower = false;
    for (i, c) in word.char_indices() {
        if c.is_uppercase() && previous_lower {
            parts.push((&word[start..i], start..i));
            start = i;
        }
        previous_lower = c.is_lowercase();
    }
    parts.push((&word[start..], start..word.len()));
    parts
}

/// The most edits a spelling match of `word` may take: none below 5 letters (short words are
/// near too many others), 1 up to 7 letters, 2 from 8.
pub fn spelling_distance(word: &str) -> u8 {
    match word.chars().count() {
        0..=4 => 0,
        5..=7 => 1,
        _ => 2,
    }
}

/// Damerau–Levenshtein distance over characters (an adjacent transposition is one edit, as in
/// [`Spellings`]).
pub fn edit_distance(a: &str, b: &str) -> u32 {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i as u32;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j as u32;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = u32::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The words of a sorted set within `distance` edits of one word: a Levenshtein automaton
/// (transpositions count one edit) to run over an FST (`tantivy_fst::Map::search`,
/// `TermDictionary::search`), which visits only the branches that can still match.
pub struct Spellings(DFA);

impl Spellings {
    /// The automaton of the words within `distance` (1 or 2) edits of `word`.
    pub fn within(word: &str, distance: u8) -> Spellings {
        // Building the automaton builder is the costly part: once per process and distance.
        static BUILDERS: OnceLock<[LevenshteinAutomatonBuilder; 2]> = OnceLock::new();
        let builders = BUILDERS
            .get_or_init(|| [LevenshteinAutomatonBuilder::new(1, true), LevenshteinAutomatonBuilder::new(2, true)]);
        Spellings(builders[usize::from(distance.clamp(1, 2) - 1)].build_dfa(word))
    }
}

impl tantivy_fst::Automaton for Spellings {
    type State = u32;

    fn start(&self) -> u32 {
        self.0.initial_state()
    }

    fn is_match(&self, state: &u32) -> bool {
        matches!(self.0.distance(*state), Distance::Exact(_))
    }

    fn can_match(&self, state: &u32) -> bool {
        *state != SINK_STATE
    }

    fn accept(&self, state: &u32, byte: u8) -> u32 {
        self.0.transition(*state, byte)
    }
}

/// Letters typed for Twi's open vowels (and the apostrophe's curly form) → the standard ones.
fn fold_letter(c: char) -> char {
    match c {
        'ε' | 'Ɛ' | 'Ε' => 'ɛ',
        'ᴐ' | 'Ɔ' => 'ɔ',
        '’' | 'ʼ' => '\'',
        c => c,
    }
}

/// Combining Diacritical Marks: the accents and tone marks of Latin-script languages.
fn is_latin_mark(c: char) -> bool {
    ('\u{0300}'..='\u{036F}').contains(&c)
}

/// Tokenizer of [`source_words_analyzer`]: the words of the index's
/// [`UnicodeWordTokenizer`], each split by [`camel_parts`] and [`fold`]ed. Offsets stay those of
/// the original text.
#[derive(Clone, Default)]
pub struct SourceWordTokenizer {
    words: UnicodeWordTokenizer,
}

impl Tokenizer for SourceWordTokenizer {
    type TokenStream<'a> = PreTokenizedStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> PreTokenizedStream {
        let mut tokens: Vec<Token> = Vec::new();
        let mut words = self.words.token_stream(text);
        while words.advance() {
            let word = words.token();
            for (part, span) in camel_parts(&word.text) {
                let folded = fold(part);
                if !folded.is_empty() {
                    tokens.push(Token {
                        offset_from: word.offset_from + span.start,
                        offset_to: word.offset_from + span.end,
                        position: tokens.len(),
                        text: folded,
                        position_length: 1,
                    });
                }
            }
        }
        // The stream hands out the tokens only; the text is not needed again.
        PreTokenizedString { text: String::new(), tokens }.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::text::{analyze, analyze_spans};

    #[test]
    fn latin_tone_marks_fold_and_other_scripts_keep_their_signs() {
        assert_eq!(fold("Orílẹ̀-èdè"), "orile-ede");
        assert_eq!(fold("bọ́ọ̀lù"), "boolu");
        assert_eq!(fold("Naijịrịa"), "naijiria");
        // The virama of Marathi and the vowel signs of Amharic are parts of their letters.
        assert_eq!(fold("श्वास"), "श्वास");
        assert_eq!(fold("ኢትዮጵያ"), "ኢትዮጵያ");
    }

    #[test]
    fn twi_look_alike_letters_fold_to_the_latin_open_vowels() {
        assert_eq!(fold("kεse"), fold("kɛse"));
        assert_eq!(fold("ᴐhemaa"), "ɔhemaa");
        assert_eq!(fold("Ɔman"), "ɔman");
    }

    #[test]
    fn spellings_finds_the_words_within_the_distance() {
        let words = tantivy_fst::Map::from_iter(["liberia", "libya", "nigeria", "slovenia"].map(|w| (w, 0))).unwrap();
        let near = |w: &str| {
            let mut stream = tantivy_fst::IntoStreamer::into_stream(words.search(Spellings::within(w, spelling_distance(w))));
            let mut out = Vec::new();
            while let Some((k, _)) = tantivy_fst::Streamer::next(&mut stream) {
                out.push(String::from_utf8(k.to_vec()).unwrap());
            }
            out
        };
        assert_eq!(near("liberiya"), ["liberia"]);
        assert_eq!(near("siloveniya"), ["slovenia"]);
        assert_eq!(near("nijeriya"), ["nigeria"]);
        assert_eq!(edit_distance("nijeriya", "nigeria"), 2);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(spelling_distance("mwaka"), 1);
        assert_eq!(spelling_distance("mu"), 0);
    }

    #[test]
    fn names_glued_to_a_prefix_become_words() {
        let mut a = source_words_analyzer();
        assert_eq!(analyze(&mut a, "iyini inhlokodolobha yaseNetherlands?"), ["iyini", "inhlokodolobha", "yase", "netherlands"]);
        assert_eq!(analyze(&mut a, "u-Galileo NASA"), ["u", "galileo", "nasa"]);
        let spans = analyze_spans(&mut a, "a sikaMiss");
        assert_eq!(spans, [("a".to_string(), 0..1), ("sika".to_string(), 2..6), ("miss".to_string(), 6..10)]);
    }
}
