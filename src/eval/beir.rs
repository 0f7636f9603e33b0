//! BEIR collections: `corpus.jsonl[.gz]`, `queries.jsonl` (optionally `queries.<lang>.jsonl`),
//! `qrels/<split>.tsv`.
//!
//! This module loads queries and qrels and selects the queries of a split. Reading the corpus
//! itself is the document reader's job; here we only locate the corpus file.
use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::qrels::Qrels;
use crate::corpus::open_maybe_gz;

/// One query of a collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The BEIR `_id`.
    pub id: String,
    /// The query text.
    pub text: String,
    /// ISO 639-3 language code from the `lang` field, when the file gives one.
    pub lang: Option<String>,
}

/// A BEIR collection directory.
#[derive(Debug, Clone)]
pub struct BeirCollection {
    dir: PathBuf,
}

/// The queries and judgements of one split of a collection.
#[derive(Debug, Clone)]
pub struct BeirSplit {
    /// Split name (`test`, `dev`, ...).
    pub split: String,
    /// The queries judged in this split, in the order of the queries file.
    pub queries: Vec<Query>,
    /// The split's judgements.
    pub qrels: Qrels,
}

impl BeirCollection {
    /// Opens a collection directory; errors when it has no corpus or no `qrels/` folder.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let collection = BeirCollection {
            dir: dir.as_ref().to_path_buf(),
        };
        if !collection.dir.is_dir() {
            bail!(
                "BEIR collection {} is not a directory",
                collection.dir.display()
            );
        }
        collection.corpus_path()?;
        if !collection.dir.join("qrels").is_dir() {
            bail!(
                "BEIR collection {} has no qrels/ directory",
                collection.dir.display()
            );
        }
        Ok(collection)
    }

    /// The collection directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The collection's name: its directory name.
    pub fn name(&self) -> String {
        self.dir
            .canonicalize()
            .unwrap_or_else(|_| self.dir.clone())
            .file_name()
            .map_or_else(
                || "collection".to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
    }

    /// `corpus.jsonl` if present, else `corpus.jsonl.gz`.
    pub fn corpus_path(&self) -> Result<PathBuf> {
        for name in ["corpus.jsonl", "corpus.jsonl.gz"] {
            let path = self.dir.join(name);
            if path.is_file() {
                return Ok(path);
            }
        }
        bail!(
            "BEIR collection {} has neither corpus.jsonl nor corpus.jsonl.gz",
            self.dir.display()
        )
    }

    /// A fingerprint of the corpus *content* (SHA-256 of the decompressed bytes, 16 hex digits):
    /// collections that share a corpus (the AfriQA sets, the SIB sets) get the same value, so an
    /// index built for one can be reused for the others.
    pub fn corpus_fingerprint(&self) -> Result<String> {
        use sha2::Digest as _;
        let path = self.corpus_path()?;
        let mut reader = open_maybe_gz(&path)?;
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = std::io::Read::read(&mut reader, &mut buf)
                .with_context(|| format!("reading {}", path.display()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let digest = hasher.finalize();
        Ok(digest.iter().take(8).map(|b| format!("{b:02x}")).collect())
    }

    /// Split names, from `qrels/<split>.tsv`, sorted.
    pub fn splits(&self) -> Result<Vec<String>> {
        let qrels_dir = self.dir.join("qrels");
        let mut splits = Vec::new();
        for entry in std::fs::read_dir(&qrels_dir)
            .with_context(|| format!("listing {}", qrels_dir.display()))?
        {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "tsv") {
                if let Some(stem) = path.file_stem() {
                    splits.push(stem.to_string_lossy().into_owned());
                }
            }
        }
        splits.sort();
        Ok(splits)
    }

    /// The split to evaluate: `wanted` when given, else `test` when the collection has it, else
    /// its only split. Errors when there is no split, or several and none is `test`.
    pub fn choose_split(&self, wanted: Option<&str>) -> Result<String> {
        if let Some(split) = wanted {
            return Ok(split.to_string());
        }
        let splits = self.splits()?;
        if splits.iter().any(|s| s == "test") {
            return Ok("test".to_string());
        }
        match splits.as_slice() {
            [only] => Ok(only.clone()),
            [] => bail!("{}: no qrels/<split>.tsv", self.dir.display()),
            many => bail!("{}: several splits ({}); choose one with --split", self.dir.display(), many.join(", ")),
        }
    }

    /// The qrels file of `split`.
    pub fn qrels_path(&self, split: &str) -> PathBuf {
        self.dir.join("qrels").join(format!("{split}.tsv"))
    }

    /// Resolves a queries file: `None` → `queries.jsonl`; a bare or relative name that does not
    /// exist as given is looked up inside the collection (so `queries.eng.jsonl` works).
    pub fn queries_path(&self, queries: Option<&Path>) -> PathBuf {
        match queries {
            None => self.dir.join("queries.jsonl"),
            Some(p) if p.is_relative() && !p.exists() => self.dir.join(p),
            Some(p) => p.to_path_buf(),
        }
    }

    /// Loads `split`: its qrels, and the queries it judges from `queries` (see
    /// [`BeirCollection::queries_path`]), in file order.
    ///
    /// Errors when the split does not exist (naming the ones that do) or when a judged query has
    /// no text in the queries file.
    pub fn load_split(&self, split: &str, queries: Option<&Path>) -> Result<BeirSplit> {
        let qrels_path = self.qrels_path(split);
        if !qrels_path.is_file() {
            let known = self.splits().unwrap_or_default();
            bail!(
                "collection {} has no split {split:?} (no {}); splits: {}",
                self.dir.display(),
                qrels_path.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            );
        }
        let qrels = Qrels::read_beir(&qrels_path)?;
        let queries_path = self.queries_path(queries);
        let all = read_queries(&queries_path)?;
        let selected: Vec<Query> = all.into_iter().filter(|q| qrels.contains(&q.id)).collect();
        if selected.len() != qrels.len() {
            let have: HashSet<&str> = selected.iter().map(|q| q.id.as_str()).collect();
            let missing: Vec<&str> = qrels.query_ids().filter(|id| !have.contains(id)).collect();
            bail!(
                "{}: {} judged quer{} of split {split:?} ha{} no text in {}: {}{}",
                qrels_path.display(),
                missing.len(),
                if missing.len() == 1 { "y" } else { "ies" },
                if missing.len() == 1 { "s" } else { "ve" },
                queries_path.display(),
                missing
                    .iter()
                    .take(5)
                    .map(|s| format!("{s:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if missing.len() > 5 { ", ..." } else { "" }
            );
        }
        Ok(BeirSplit {
            split: split.to_string(),
            queries: selected,
            qrels,
        })
    }
}

#[derive(Deserialize)]
struct RawQuery {
    #[serde(rename = "_id")]
    id: RawId,
    text: String,
    #[serde(default)]
    lang: Option<String>,
}

/// BEIR ids are strings, but some exports write numbers.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawId {
    Str(String),
    Int(i64),
}

/// Reads a BEIR queries file (JSON lines `{"_id", "text", "lang"?}`; plain or `.gz`), in file order.
/// Blank lines are skipped. Errors name the file and line, including on a repeated `_id`.
pub fn read_queries(path: &Path) -> Result<Vec<Query>> {
    let reader = open_maybe_gz(path)?;
    let source = path.display().to_string();
    let mut queries = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, line) in reader.lines().enumerate() {
        let lineno = i + 1;
        let line = line.with_context(|| format!("{source}:{lineno}: reading line"))?;
        if line.trim().is_empty() {
            continue;
        }
        let raw: RawQuery = serde_json::from_str(&line).with_context(|| {
            format!("{source}:{lineno}: not a query object {{\"_id\", \"text\"}}")
        })?;
        let id = match raw.id {
            RawId::Str(s) => s,
            RawId::Int(n) => n.to_string(),
        };
        if id.is_empty() {
            bail!("{source}:{lineno}: empty \"_id\"");
        }
        if let Some(prev) = seen.insert(id.clone(), lineno) {
            bail!("{source}:{lineno}: query id {id:?} repeats line {prev}");
        }
        queries.push(Query {
            id,
            text: raw.text,
            lang: raw.lang,
        });
    }
    Ok(queries)
}
