//! Reading documents from JSONL: Optical's own `{"id","title","text","lang"}` lines and BEIR
//! `corpus.jsonl` / `corpus.jsonl.gz` (`_id` instead of `id`). Plain or gzipped files are told
//! apart by their magic bytes, not their name.
//!
//! [`CorpusReader`] is an iterator of per-line results: each good line becomes a [`CorpusDoc`],
//! each bad line a [`BadLine`] naming the file, the 1-based line number and what is wrong. A bad
//! line never stops the iteration, so a caller can report every bad line of a file in one pass;
//! what to do with the good lines is the caller's policy (`optical index` indexes nothing from a
//! file with a bad line unless `--skip-invalid` is given — see `src/cli/index.rs`). Errors that
//! make the rest of the file unreadable (I/O, a corrupt gzip stream) end the iteration with an
//! `Err` from [`CorpusReader::next_line`] / the fatal variant of [`CorpusItem`].
//!
//! What counts as a bad line:
//! - not JSON, or JSON that is not an object ([`BadLineKind::NotJson`]);
//! - invalid UTF-8 ([`BadLineKind::InvalidUtf8`]);
//! - no `id`/`_id`, or an empty one ([`BadLineKind::MissingId`]);
//! - an id already seen earlier in the same file ([`BadLineKind::DuplicateId`]);
//! - nothing to index: `title` and `text` both missing or blank ([`BadLineKind::EmptyText`]);
//! - a field of the wrong JSON type, e.g. a numeric title, or an id longer than
//!   [`MAX_KEY_BYTES`](crate::engine::MAX_KEY_BYTES) ([`BadLineKind::BadField`]).
//!
//! An optional `"vector": [numbers]` field carries a precomputed document vector.
//! Blank lines are skipped silently (files often end with one). Ids may be JSON strings or
//! integers (integers are turned into their decimal text). Unknown fields are ignored.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use flate2::read::MultiGzDecoder;
use serde_json::Value;

/// One document read from a corpus file.
#[derive(Clone, Debug, PartialEq)]
pub struct CorpusDoc {
    /// External key (`id` or BEIR `_id`).
    pub id: String,
    /// Title (empty when absent).
    pub title: String,
    /// Body text (empty when absent, as long as the title is not).
    pub text: String,
    /// Language code, when the line has one.
    pub lang: Option<String>,
    /// A precomputed vector (`"vector": [numbers]`), when the line has one.
    pub vector: Option<Vec<f32>>,
}

/// What is wrong with a bad line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadLineKind {
    /// Not valid JSON, or not a JSON object.
    NotJson,
    /// Not valid UTF-8.
    InvalidUtf8,
    /// No `id`/`_id` field, or an empty/null one.
    MissingId,
    /// The id was already used on an earlier line of the same file.
    DuplicateId {
        /// The line that used the id first.
        first_line: usize,
    },
    /// `title` and `text` are both missing or blank.
    EmptyText,
    /// A field has the wrong JSON type.
    BadField,
}

/// A line that could not be turned into a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    /// The file.
    pub path: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// The kind of problem.
    pub kind: BadLineKind,
    /// A human-readable explanation.
    pub reason: String,
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.reason)
    }
}

impl std::error::Error for BadLine {}

/// One step of a [`CorpusReader`]: a document (with its line number) or a bad line.
pub type CorpusItem = std::result::Result<(usize, CorpusDoc), BadLine>;

/// Streams documents out of one JSONL file (plain or gzipped).
pub struct CorpusReader {
    path: PathBuf,
    input: Box<dyn BufRead + Send>,
    line_no: usize,
    buf: Vec<u8>,
    seen: HashMap<String, usize>,
    bytes_total: Option<u64>,
    done: bool,
}

/// True when the bytes start with the gzip magic number.
fn is_gzip(head: &[u8]) -> bool {
    head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b
}

impl CorpusReader {
    /// Opens a corpus file, plain or gzipped ([`open_maybe_gz`]).
    pub fn open(path: impl AsRef<Path>) -> Result<CorpusReader> {
        let path = path.as_ref();
        let input = open_maybe_gz(path)?;
        let bytes_total = std::fs::metadata(path).ok().map(|m| m.len());
        Ok(CorpusReader::from_reader(path, input, bytes_total))
    }

    /// Reads from any buffered reader (already decompressed); `path` is used in messages.
    pub fn from_reader(path: impl Into<PathBuf>, input: Box<dyn BufRead + Send>, bytes_total: Option<u64>) -> CorpusReader {
        CorpusReader {
            path: path.into(),
            input,
            line_no: 0,
            buf: Vec::new(),
            seen: HashMap::new(),
            bytes_total,
            done: false,
        }
    }

    /// Size of the file on disk (compressed size for gzip), for progress reporting.
    pub fn file_len(&self) -> Option<u64> {
        self.bytes_total
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next line's result, `Ok(None)` at the end of the file, or `Err` when the file cannot be
    /// read further (I/O error, corrupt gzip stream).
    pub fn next_line(&mut self) -> Result<Option<CorpusItem>> {
        loop {
            if self.done {
                return Ok(None);
            }
            self.buf.clear();
            let n = self.input.read_until(b'\n', &mut self.buf).with_context(|| {
                format!("reading {} after line {}", self.path.display(), self.line_no)
            })?;
            if n == 0 {
                self.done = true;
                return Ok(None);
            }
            self.line_no += 1;
            let line = std::mem::take(&mut self.buf);
            let item = self.parse(&line);
            self.buf = line;
            match item {
                Some(item) => return Ok(Some(item)),
                None => continue, // blank line
            }
        }
    }

    fn bad(&self, kind: BadLineKind, reason: impl Into<String>) -> BadLine {
        BadLine { path: self.path.clone(), line: self.line_no, kind, reason: reason.into() }
    }

    /// Parses one raw line; `None` for a blank line.
    fn parse(&mut self, raw: &[u8]) -> Option<CorpusItem> {
        let text = match std::str::from_utf8(raw) {
            Ok(t) => t,
            Err(e) => {
                return Some(Err(self.bad(
                    BadLineKind::InvalidUtf8,
                    format!("invalid UTF-8 at byte {} of the line", e.valid_up_to()),
                )));
            }
        };
        let text = text.trim_start_matches('\u{feff}').trim();
        if text.is_empty() {
            return None;
        }
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return Some(Err(self.bad(BadLineKind::NotJson, format!("not valid JSON: {e}")))),
        };
        let Value::Object(obj) = value else {
            return Some(Err(self.bad(BadLineKind::NotJson, "not a JSON object")));
        };
        let id = match obj.get("id").or_else(|| obj.get("_id")) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
            Some(Value::String(_)) | Some(Value::Null) | None => {
                return Some(Err(self.bad(BadLineKind::MissingId, "missing or empty `id` (or `_id`)")));
            }
            Some(other) => {
                return Some(Err(self.bad(BadLineKind::BadField, format!("`id` must be a string or an integer, found {other}"))));
            }
        };
        if id.len() > crate::engine::MAX_KEY_BYTES {
            let head: String = id.chars().take(40).collect();
            return Some(Err(self.bad(
                BadLineKind::BadField,
                format!("`id` `{head}…` is {} bytes long; ids are limited to {} bytes (UTF-8)", id.len(), crate::engine::MAX_KEY_BYTES),
            )));
        }
        let string_field = |name: &str| -> std::result::Result<Option<String>, BadLine> {
            match obj.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(self.bad(
                    BadLineKind::BadField,
                    format!("`{name}` must be a string, found {}", json_type(other)),
                )),
            }
        };
        let fields = (|| Ok((string_field("title")?, string_field("text")?, string_field("lang")?)))();
        let (title, body, lang) = match fields {
            Ok(f) => f,
            Err(bad) => return Some(Err(bad)),
        };
        let vector = match obj.get("vector") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let mut v = Vec::with_capacity(items.len());
                for (i, x) in items.iter().enumerate() {
                    match x.as_f64() {
                        Some(x) if x.is_finite() => v.push(x as f32),
                        _ => return Some(Err(self.bad(BadLineKind::BadField, format!("`vector` element {i} is not a finite number")))),
                    }
                }
                Some(v)
            }
            Some(other) => {
                return Some(Err(self.bad(BadLineKind::BadField, format!("`vector` must be an array of numbers, found {}", json_type(other)))));
            }
        };
        let title = title.unwrap_or_default();
        let body = body.unwrap_or_default();
        if title.trim().is_empty() && body.trim().is_empty() {
            return Some(Err(self.bad(BadLineKind::EmptyText, format!("document `{id}` has no text: `title` and `text` are both empty"))));
        }
        if let Some(&first_line) = self.seen.get(&id) {
            return Some(Err(self.bad(
                BadLineKind::DuplicateId { first_line },
                format!("duplicate id `{id}` (first used on line {first_line})"),
            )));
        }
        self.seen.insert(id.clone(), self.line_no);
        let lang = lang.map(|l| l.trim().to_string()).filter(|l| !l.is_empty());
        Some(Ok((self.line_no, CorpusDoc { id, title, text: body, lang, vector })))
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Iterator for CorpusReader {
    /// A document or a bad line; a fatal read error is turned into an `Err` of kind
    /// [`anyhow::Error`] by [`CorpusReader::next_line`] — the iterator yields it as `Err` and stops.
    type Item = Result<CorpusItem>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_line() {
            Ok(Some(item)) => Some(Ok(item)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// The outcome of reading a whole file: its good documents and its bad lines.
#[derive(Debug, Default)]
pub struct Corpus {
    /// Good documents, in file order.
    pub docs: Vec<CorpusDoc>,
    /// Bad lines, in file order.
    pub bad: Vec<BadLine>,
}

/// Reads a whole corpus file into memory (documents and bad lines). Fails only when the file
/// cannot be read; bad lines are returned, not raised.
pub fn read_corpus(path: impl AsRef<Path>) -> Result<Corpus> {
    let mut corpus = Corpus::default();
    for item in CorpusReader::open(path)? {
        match item? {
            Ok((_, doc)) => corpus.docs.push(doc),
            Err(bad) => corpus.bad.push(bad),
        }
    }
    Ok(corpus)
}

/// Opens a file for reading, decompressing it when it is gzipped. Gzip is told by the magic
/// bytes, not the name, so a mis-named file still reads. The one opener of every file Optical
/// reads that may be compressed: corpora, BEIR queries, bitext.
pub fn open_maybe_gz(path: impl AsRef<Path>) -> Result<Box<dyn BufRead + Send>> {
    let path = path.as_ref();
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut raw = BufReader::with_capacity(1 << 16, file);
    let head = raw.fill_buf().with_context(|| format!("reading {}", path.display()))?;
    Ok(if is_gzip(head) {
        Box::new(BufReader::with_capacity(1 << 16, MultiGzDecoder::new(raw)))
    } else {
        Box::new(raw)
    })
}

/// Reads a whole possibly-gzipped file to a string.
pub fn read_to_string_maybe_gz(path: impl AsRef<Path>) -> Result<String> {
    let path = path.as_ref();
    let mut s = String::new();
    open_maybe_gz(path)?.read_to_string(&mut s).with_context(|| format!("reading {}", path.display()))?;
    Ok(s)
}
