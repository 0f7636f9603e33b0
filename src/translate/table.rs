//! The translation table `p(e | f)` and its file format.
//!
//! ```text
//! # optical-translation-table 2
//! # source hau
//! # target eng
//! # method ibm-model1
//! # entries 12345
//! # sha256 <hex sha256 of every line after this header>
//! f<TAB>e<TAB>p<TAB>word
//! ```
//!
//! `e` is an English term as the index analyses it (stemmed: `figur`); `word` is the English word
//! it was most often written as in the bitext (`figure`), which query glosses show the dense
//! encoder ([`super::gloss`]). Version 1 files (three columns, no `word`) are still read; their
//! terms stand for themselves.
//!
//! UTF-8 TSV so that a user can read and diff it; the header names the format version, the
//! languages, how it was built, and a checksum of the body, so that a truncated or edited file is
//! refused with the file named instead of silently translating badly. Rows are sorted by `f`,
//! then by descending `p`, so that writing is deterministic.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use tantivy_fst::{IntoStreamer, Streamer};

use super::words::{Spellings, edit_distance, fold, spelling_distance};

/// File-format version written; version 1 (no written forms) is also read.
pub const FORMAT: u32 = 2;
const MAGIC: &str = "# optical-translation-table";

/// `p(e | f)`: for each query-language word `f`, its English translations, most probable first.
#[derive(Clone, Debug, Default)]
pub struct TranslationTable {
    /// Language of the query words (ISO 639-3).
    pub source: String,
    /// Language of the translations (the index's document language).
    pub target: String,
    /// How the table was built (`ibm-model1`, `ot-plans`).
    pub method: String,
    entries: BTreeMap<String, Vec<(String, f32)>>,
    /// The English word each translation term is written as, where it differs from the term.
    written: BTreeMap<String, String>,
    /// The source words as an FST for [`TranslationTable::near`], built on first use (`None`
    /// if it could not be built) and dropped whenever the words change.
    keys: OnceLock<Option<Arc<tantivy_fst::Map<Vec<u8>>>>>,
}

impl PartialEq for TranslationTable {
    fn eq(&self, other: &Self) -> bool {
        (&self.source, &self.target, &self.method, &self.entries, &self.written)
            == (&other.source, &other.target, &other.method, &other.entries, &other.written)
    }
}

/// How a table is cut down before it is stored or used.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pruning {
    /// At most this many translations per word.
    pub top_k: usize,
    /// Keep translations, most probable first, until their probabilities sum to this.
    pub cumulative: f32,
    /// Drop translations below this probability.
    pub min_prob: f32,
}

impl Default for Pruning {
    fn default() -> Self {
        Pruning { top_k: 5, cumulative: 0.9, min_prob: 0.01 }
    }
}

impl TranslationTable {
    /// An empty table.
    pub fn new(source: &str, target: &str, method: &str) -> TranslationTable {
        TranslationTable {
            source: source.to_string(),
            target: target.to_string(),
            method: method.to_string(),
            entries: BTreeMap::new(),
            written: BTreeMap::new(),
            keys: OnceLock::new(),
        }
    }

    /// Sets the translations of `f` (any order; kept most probable first). The key is `f`
    /// [`fold`]ed, the form query words are looked up in.
    pub fn insert(&mut self, f: &str, mut translations: Vec<(String, f32)>) {
        translations.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        self.entries.insert(fold(f), translations);
        self.keys = OnceLock::new();
    }

    /// The source words spelled most like `word` (the fewest edits, at most
    /// [`spelling_distance`]), `word` itself left out: the words whose translations stand in for
    /// a word the table lacks — an inflection the bitext never had, a name spelled otherwise.
    pub fn near(&self, word: &str) -> Vec<&str> {
        let distance = spelling_distance(word);
        if distance == 0 {
            return Vec::new();
        }
        let keys = self.keys.get_or_init(|| {
            // BTreeMap keys come sorted and distinct, as an FST is built.
            tantivy_fst::Map::from_iter(self.entries.keys().map(|k| (k.as_bytes(), 0))).ok().map(Arc::new)
        });
        let Some(keys) = keys else { return Vec::new() };
        let mut stream = keys.search(Spellings::within(word, distance)).into_stream();
        let mut near: Vec<(u32, &str)> = Vec::new();
        while let Some((key, _)) = stream.next() {
            let Some((key, _)) = std::str::from_utf8(key).ok().and_then(|k| self.entries.get_key_value(k)) else { continue };
            if key != word {
                near.push((edit_distance(word, key), key.as_str()));
            }
        }
        let closest = near.iter().map(|(d, _)| *d).min().unwrap_or(0);
        near.into_iter().filter(|(d, _)| *d == closest).map(|(_, k)| k).collect()
    }

    /// Records the English word each translation term is written as (`figur` → `figure`, from
    /// [`super::gloss::english_written_forms`]); terms the table does not use are ignored.
    pub fn set_written_forms(&mut self, forms: BTreeMap<String, String>) {
        let used: std::collections::BTreeSet<&str> = self.entries.values().flatten().map(|(e, _)| e.as_str()).collect();
        self.written = forms.into_iter().filter(|(e, w)| used.contains(e.as_str()) && e != w).collect();
    }

    /// The English word translation term `e` is written as: the recorded one, else `e` itself.
    pub fn written_form<'a>(&'a self, e: &'a str) -> &'a str {
        self.written.get(e).map_or(e, String::as_str)
    }

    /// The translations of `f`, most probable first.
    pub fn get(&self, f: &str) -> Option<&[(String, f32)]> {
        self.entries.get(f).map(Vec::as_slice)
    }

    /// The source words, sorted.
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Number of source words.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no word has a translation.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of (f, e) rows.
    pub fn rows(&self) -> usize {
        self.entries.values().map(Vec::len).sum()
    }

    /// The linear interpolation `weight · p_self(e | f) + (1 − weight) · p_other(e | f)` of two
    /// tables of the same languages, pruned by `pruning`. With a weight strictly between 0 and 1,
    /// a word only one table has keeps that table's translations (pruning renormalises them). Two tables learned differently (IBM
    /// Model 1 from co-occurrence, OT plans from contextual states) make different mistakes, and
    /// the mixture keeps what they agree on on top.
    pub fn mix(&self, other: &TranslationTable, weight: f32, pruning: Pruning) -> Result<TranslationTable> {
        if self.source != other.source || self.target != other.target {
            bail!(
                "cannot mix a {} → {} table with a {} → {} one",
                self.source,
                self.target,
                other.source,
                other.target
            );
        }
        if !(0.0..=1.0).contains(&weight) {
            bail!("mixing weight {weight} is outside [0, 1]");
        }
        let method = format!("{}+{}", self.method, other.method);
        let mut mixed = TranslationTable::new(&self.source, &self.target, &method);
        let words: std::collections::BTreeSet<&String> = self.entries.keys().chain(other.entries.keys()).collect();
        for f in words {
            let mut p: BTreeMap<&str, f32> = BTreeMap::new();
            for (table, w) in [(self, weight), (other, 1.0 - weight)] {
                for (e, q) in table.entries.get(f).into_iter().flatten() {
                    *p.entry(e.as_str()).or_default() += w * q;
                }
            }
            let list: Vec<(String, f32)> = p.into_iter().filter(|(_, q)| *q > 0.0).map(|(e, q)| (e.to_string(), q)).collect();
            if !list.is_empty() {
                mixed.insert(f, list);
            }
        }
        mixed.prune(pruning);
        let mut written = other.written.clone();
        written.extend(self.written.clone());
        mixed.set_written_forms(written);
        Ok(mixed)
    }

    /// Keeps, per word, the most probable translations allowed by `pruning`, renormalised to sum
    /// to 1; words left with none are dropped.
    pub fn prune(&mut self, pruning: Pruning) {
        for list in self.entries.values_mut() {
            let mut kept = Vec::new();
            let mut mass = 0.0;
            for (e, p) in list.iter() {
                if kept.len() >= pruning.top_k || mass >= pruning.cumulative || *p < pruning.min_prob {
                    break;
                }
                mass += p;
                kept.push((e.clone(), *p));
            }
            if mass > 0.0 {
                for (_, p) in &mut kept {
                    *p /= mass;
                }
            }
            *list = kept;
        }
        self.entries.retain(|_, l| !l.is_empty());
        self.keys = OnceLock::new();
    }

    /// The file's text (header with checksum, then sorted rows).
    pub fn to_tsv(&self) -> Result<String> {
        for name in [&self.source, &self.target, &self.method] {
            check_header_value(name)?;
        }
        let mut body = String::new();
        for (f, list) in &self.entries {
            for (e, p) in list {
                check_token(f)?;
                check_token(e)?;
                let word = self.written_form(e);
                check_token(word)?;
                // `{}` on f32 prints the shortest text that reads back to the same value.
                writeln!(body, "{f}\t{e}\t{p}\t{word}").expect("writing to a String");
            }
        }
        let sha = hex(&Sha256::digest(body.as_bytes()));
        Ok(format!(
            "{MAGIC} {FORMAT}\n# source {}\n# target {}\n# method {}\n# entries {}\n# sha256 {sha}\n{body}",
            self.source,
            self.target,
            self.method,
            self.rows()
        ))
    }

    /// Writes the table to `path` (through a temporary file renamed into place).
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = self.to_tsv().with_context(|| format!("writing {}", path.display()))?;
        crate::distill::write_atomic(path, text.as_bytes())
            .with_context(|| format!("writing translation table {}", path.display()))
    }

    /// Reads a table written by [`TranslationTable::write`]; errors name the file and line.
    pub fn read(path: &Path) -> Result<TranslationTable> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading translation table {}", path.display()))?;
        TranslationTable::parse(&text).with_context(|| format!("translation table {}", path.display()))
    }

    /// Parses the file's text (see the module docs).
    pub fn parse(text: &str) -> Result<TranslationTable> {
        let mut lines = text.split_inclusive('\n');
        let mut header = |n: usize, key: &str| -> Result<String> {
            let line = lines.next().with_context(|| format!("line {n}: the header ends early (expected `# {key} …`)"))?;
            let line = line.trim_end_matches(['\n', '\r']);
            let Some(value) = line.strip_prefix("# ").and_then(|l| l.strip_prefix(key)).and_then(|l| l.strip_prefix(' ')) else {
                bail!("line {n}: expected `# {key} …`, found {line:?}");
            };
            Ok(value.to_string())
        };
        let version = header(1, &MAGIC[2..])?;
        let columns = match version.as_str() {
            "1" => 3,
            "2" => 4,
            _ => bail!("line 1: format version {version:?}, this build reads versions 1 and {FORMAT}"),
        };
        let source = header(2, "source")?;
        let target = header(3, "target")?;
        let method = header(4, "method")?;
        let entries: usize = header(5, "entries")?
            .parse()
            .map_err(|_| anyhow::anyhow!("line 5: `# entries` is not a number"))?;
        let sha = header(6, "sha256")?;
        let body: String = lines.collect();
        let actual = hex(&Sha256::digest(body.as_bytes()));
        if actual != sha {
            bail!("checksum mismatch: the header says sha256 {sha}, the rows hash to {actual} (the file is truncated or was edited)");
        }
        let mut table = TranslationTable::new(&source, &target, &method);
        let mut by_word: BTreeMap<&str, Vec<(String, f32)>> = BTreeMap::new();
        let mut written: BTreeMap<String, String> = BTreeMap::new();
        let mut rows = 0usize;
        for (i, line) in body.lines().enumerate() {
            let n = i + 7;
            let fields: Vec<&str> = line.split('\t').collect();
            if fields.len() != columns {
                let expected = if columns == 3 { "f<TAB>e<TAB>p" } else { "f<TAB>e<TAB>p<TAB>word" };
                bail!("line {n}: expected `{expected}`, found {line:?}");
            }
            let (f, e, p) = (fields[0], fields[1], fields[2]);
            if let Some(word) = fields.get(3) {
                if word.is_empty() {
                    bail!("line {n}: empty English word");
                }
                match written.get(e) {
                    Some(w) if w != word => bail!("line {n}: term {e:?} is written {word:?} here and {w:?} on an earlier line"),
                    _ => {
                        written.insert(e.to_string(), word.to_string());
                    }
                }
            }
            let p: f32 = p.parse().map_err(|_| anyhow::anyhow!("line {n}: probability {p:?} is not a number"))?;
            if !(p > 0.0 && p <= 1.0) {
                bail!("line {n}: probability {p} is outside (0, 1]");
            }
            if f.is_empty() || e.is_empty() {
                bail!("line {n}: empty word");
            }
            by_word.entry(f).or_default().push((e.to_string(), p));
            rows += 1;
        }
        if rows != entries {
            bail!("the header says {entries} entries, the file has {rows}");
        }
        // Keys are looked up folded. A table written before folding may hold several spellings
        // of one folded word (`ìlú`, `ilu`): their translations are averaged.
        let mut spellings: BTreeMap<String, Vec<Vec<(String, f32)>>> = BTreeMap::new();
        for (f, list) in by_word {
            spellings.entry(fold(f)).or_default().push(list);
        }
        for (f, mut lists) in spellings {
            let list = if lists.len() == 1 {
                lists.pop().unwrap_or_default()
            } else {
                let mut sum: BTreeMap<String, f32> = BTreeMap::new();
                for (e, p) in lists.iter().flatten() {
                    *sum.entry(e.clone()).or_default() += p / lists.len() as f32;
                }
                sum.into_iter().collect()
            };
            table.insert(&f, list);
        }
        table.set_written_forms(written);
        Ok(table)
    }
}

/// The table files at `path`: the file itself, or every `*.tsv` file of a directory (sorted).
pub fn table_files(path: &Path) -> Result<Vec<std::path::PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("listing {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tsv"))
        .collect();
    files.sort();
    Ok(files)
}

/// The tables at `path` (see [`table_files`]).
pub fn read_tables(path: &Path) -> Result<Vec<TranslationTable>> {
    table_files(path)?.iter().map(|f| TranslationTable::read(f)).collect()
}

fn check_token(word: &str) -> Result<()> {
    if word.is_empty() || word.contains(['\t', '\n', '\r']) {
        bail!("word {word:?} is empty or holds a tab or newline");
    }
    Ok(())
}

fn check_header_value(value: &str) -> Result<()> {
    if value.is_empty() || value.contains(['\n', '\r']) {
        bail!("header value {value:?} is empty or holds a newline");
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TranslationTable {
        let mut t = TranslationTable::new("hau", "eng", "ibm-model1");
        t.insert("ruwa", vec![("water".into(), 0.7), ("rain".into(), 0.2), ("the".into(), 0.1)]);
        t.insert("shekara", vec![("year".into(), 0.95), ("old".into(), 0.05)]);
        t.set_written_forms(BTreeMap::from([("year".into(), "years".into()), ("unused".into(), "x".into())]));
        t
    }

    /// A table file of format `version` from its rows, with a correct header and checksum.
    fn file_text(version: u32, source: &str, entries: usize, body: &str) -> String {
        let sha = hex(&Sha256::digest(body.as_bytes()));
        format!("{MAGIC} {version}\n# source {source}\n# target eng\n# method ibm-model1\n# entries {entries}\n# sha256 {sha}\n{body}")
    }

    #[test]
    fn round_trips_through_text() {
        let t = sample();
        let back = TranslationTable::parse(&t.to_tsv().unwrap()).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.get("ruwa").unwrap()[0], ("water".to_string(), 0.7));
        assert_eq!(back.written_form("year"), "years");
        assert_eq!(back.written_form("water"), "water", "a term without a recorded word stands for itself");
        assert_eq!(back.written_form("unused"), "unused", "words of terms the table does not use are not kept");
    }

    #[test]
    fn a_term_written_two_ways_is_refused_with_its_line() {
        let text = file_text(2, "hau", 2, "ruwa\tyear\t0.5\tyears\nshekara\tyear\t1\tyearly\n");
        let err = format!("{:#}", TranslationTable::parse(&text).unwrap_err());
        assert!(err.contains("line 8") && err.contains("yearly"), "{err}");
        let v1 = text.replace("table 2", "table 1");
        let err = format!("{:#}", TranslationTable::parse(&v1).unwrap_err());
        assert!(err.contains("line 7: expected `f<TAB>e<TAB>p`"), "a version-1 file has three columns: {err}");
    }

    #[test]
    fn near_finds_the_closest_spellings_of_a_missing_word() {
        let mut t = TranslationTable::new("hau", "eng", "test");
        for w in ["gwamnan", "gwamnati", "gwamnatin", "sarki"] {
            t.insert(w, vec![("x".into(), 1.0)]);
        }
        assert_eq!(t.near("gwamna"), ["gwamnan"], "one edit beats two");
        assert_eq!(t.near("gwamnatn"), ["gwamnan", "gwamnati", "gwamnatin"], "ties all stay");
        assert!(t.near("gwamnan").is_empty(), "a word is not near itself");
        assert!(t.near("sark").is_empty(), "short words have no spelling matches");
        assert!(t.near("kasuwa").is_empty());
        t.insert("kasuwar", vec![("market".into(), 1.0)]);
        assert_eq!(t.near("kasuwa"), ["kasuwar"], "the key set follows inserts");
    }

    #[test]
    fn spellings_of_one_folded_word_are_averaged_on_reading() {
        // A table keyed by raw words, as tables were written before keys were folded.
        let text = file_text(1, "yor", 3, "ilu\ttown\t1\nìlú\tcity\t0.5\nìlú\ttown\t0.5\n");
        let t = TranslationTable::parse(&text).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t.get("ilu").unwrap(), [("town".to_string(), 0.75), ("city".to_string(), 0.25)]);
    }

    #[test]
    fn mixing_interpolates_and_keeps_words_of_either_table() {
        let mut a = TranslationTable::new("hau", "eng", "ibm-model1");
        a.insert("ruwa", vec![("water".into(), 0.6), ("rain".into(), 0.4)]);
        a.insert("gari", vec![("town".into(), 1.0)]);
        let mut b = TranslationTable::new("hau", "eng", "ot-plans");
        b.insert("ruwa", vec![("water".into(), 1.0)]);
        b.insert("sama", vec![("sky".into(), 1.0)]);
        let keep_all = Pruning { top_k: 5, cumulative: 1.0, min_prob: 0.0 };
        let m = a.mix(&b, 0.5, keep_all).unwrap();
        assert_eq!(m.method, "ibm-model1+ot-plans");
        let ruwa = m.get("ruwa").unwrap();
        assert_eq!(ruwa[0].0, "water");
        assert!((ruwa[0].1 - 0.8).abs() < 1e-6 && (ruwa[1].1 - 0.2).abs() < 1e-6, "{ruwa:?}");
        assert_eq!(m.get("gari").unwrap(), &[("town".to_string(), 1.0)][..], "only in a: renormalised");
        assert_eq!(m.get("sama").unwrap(), &[("sky".to_string(), 1.0)][..], "only in b");
        assert_eq!(a.mix(&b, 1.0, keep_all).unwrap().get("ruwa"), a.get("ruwa"), "weight 1 is table a");
        let other = TranslationTable::new("yor", "eng", "x");
        assert!(a.mix(&other, 0.5, keep_all).unwrap_err().to_string().contains("hau → eng"));
        assert!(a.mix(&b, 1.5, keep_all).is_err());
    }

    #[test]
    fn prune_keeps_top_mass_and_renormalises() {
        let mut t = sample();
        t.prune(Pruning { top_k: 5, cumulative: 0.85, min_prob: 0.0 });
        // ruwa: 0.7 < 0.85 so rain is kept too (0.9), then the mass is reached.
        let ruwa = t.get("ruwa").unwrap();
        assert_eq!(ruwa.len(), 2);
        assert!((ruwa[0].1 - 0.7 / 0.9).abs() < 1e-6);
        assert_eq!(t.get("shekara").unwrap(), &[("year".to_string(), 1.0)]);
        t.prune(Pruning { top_k: 1, cumulative: 1.0, min_prob: 0.0 });
        assert_eq!(t.rows(), 2);
    }

    #[test]
    fn corruption_is_refused_with_the_line_or_checksum() {
        let text = sample().to_tsv().unwrap();
        let edited = text.replace("0.7", "0.8");
        assert!(TranslationTable::parse(&edited).unwrap_err().to_string().contains("checksum mismatch"));
        let truncated = &text[..text.len() - 10];
        assert!(TranslationTable::parse(truncated).unwrap_err().to_string().contains("checksum mismatch"));
        let wrong_version = text.replacen("table 2", "table 9", 1);
        assert!(TranslationTable::parse(&wrong_version).unwrap_err().to_string().contains("format version \"9\""));
        let no_header = "ruwa\twater\t1\n";
        assert!(TranslationTable::parse(no_header).unwrap_err().to_string().contains("line 1"));
    }
}
