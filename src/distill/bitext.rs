//! Bitext files: one `X<TAB>English` pair per line, plain `.tsv` or gzip-compressed `.tsv.gz`.
//!
//! Gzip is recognised by its magic bytes, not by the file name, so a mis-named file still loads.
//! Every error names the file and the 1-based line at fault. Blank lines are skipped (a trailing
//! newline at the end of a file is common); anything else that is not exactly two non-empty
//! tab-separated fields is an error rather than a silently dropped pair.
use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::corpus::open_maybe_gz;

/// One sentence pair: the sentence in the other language and its English translation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitextPair {
    /// The sentence in language X (encoded by the student).
    pub foreign: String,
    /// Its English translation (encoded by the teacher).
    pub english: String,
}

/// Reads every pair of one bitext file.
pub fn read_bitext(path: &Path) -> Result<Vec<BitextPair>> {
    let reader = open_maybe_gz(path)?;
    let mut pairs = Vec::new();
    let mut buf = Vec::new();
    let mut reader = reader;
    let mut line_no = 0usize;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("{}:{}: read error", path.display(), line_no + 1))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let line = std::str::from_utf8(&buf)
            .map_err(|e| anyhow::anyhow!("{}:{line_no}: not valid UTF-8 ({e})", path.display()))?;
        let line = line.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        pairs.push(parse_line(line).with_context(|| format!("{}:{line_no}", path.display()))?);
    }
    if pairs.is_empty() {
        bail!("{}: no sentence pairs (expected `X<TAB>English` lines)", path.display());
    }
    Ok(pairs)
}

fn parse_line(line: &str) -> Result<BitextPair> {
    let mut fields = line.split('\t');
    let (Some(foreign), Some(english)) = (fields.next(), fields.next()) else {
        bail!("expected `X<TAB>English`, found no tab");
    };
    if fields.next().is_some() {
        bail!("expected 2 tab-separated fields, found {}", line.split('\t').count());
    }
    let (foreign, english) = (foreign.trim(), english.trim());
    if foreign.is_empty() {
        bail!("the first (non-English) field is empty");
    }
    if english.is_empty() {
        bail!("the second (English) field is empty");
    }
    Ok(BitextPair { foreign: foreign.to_string(), english: english.to_string() })
}

/// Reads and concatenates several bitext files, in order.
pub fn read_bitexts(paths: &[PathBuf]) -> Result<Vec<BitextPair>> {
    let mut all = Vec::new();
    for p in paths {
        all.extend(read_bitext(p)?);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_line_rejects_bad_shapes() {
        assert!(parse_line("a\tb").is_ok());
        assert!(parse_line("a b").is_err());
        assert!(parse_line("a\tb\tc").is_err());
        assert!(parse_line("\tb").is_err());
        assert!(parse_line("a\t ").is_err());
    }
}
