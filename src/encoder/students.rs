//! Installed students and the default query encoder.
//!
//! `scripts/setup-models.sh` assembles every student shipped in the repository's `students/`
//! into `<models>/students/<name>/` (a model directory plus `student.json`, its manifest). When
//! a search or an evaluation is not told which query encoder to use, the student whose
//! embedding space is the index's encodes the queries; a per-language student wins over the
//! multilingual one for its language, English queries go to the base model when the student's
//! manifest routes them there, and monolingual searches (queries in the documents' language)
//! keep the index's own encoder.
use std::path::{Path, PathBuf};

use super::delta::{ASSEMBLED_MANIFEST_FILE, EnglishRoute, StudentManifest};

/// The model cache: `$OPTICAL_CACHE/models`, or `~/.cache/optical/models`.
pub fn models_dir() -> PathBuf {
    let cache = std::env::var_os("OPTICAL_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/optical")
    });
    cache.join("models")
}

/// Where installed students live inside a model cache.
pub fn students_dir(models: &Path) -> PathBuf {
    models.join("students")
}

/// Every assembled student under `<models>/students`, sorted by name. Directories without a
/// readable `student.json` are not students and are skipped.
pub fn installed(models: &Path) -> Vec<(PathBuf, StudentManifest)> {
    let Ok(entries) = std::fs::read_dir(students_dir(models)) else { return Vec::new() };
    let mut out: Vec<(PathBuf, StudentManifest)> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter_map(|p| StudentManifest::load(&p.join(ASSEMBLED_MANIFEST_FILE)).ok().map(|m| (p, m)))
        .collect();
    out.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    out
}

/// What encodes the queries of a search whose index stores vectors in `space`.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryEncoderChoice {
    /// A student's model directory.
    Student(PathBuf),
    /// The index's own (document) encoder: no student fits, or the student routes this
    /// language (English) to it.
    IndexEncoder,
}

/// The default query encoder among `students` for an index in embedding space `space`, queries
/// in `query_lang` and documents in `doc_lang` (ISO 639-3, where known). A student whose
/// languages are exactly `[query_lang]` is preferred over one that lists more; English queries
/// follow the chosen student's `english_queries` route. A student serves cross-lingual search
/// (it moves a question in L to where the teacher puts its English translation): when queries
/// and documents share a language, the index's own encoder takes the queries (MasakhaNEWS,
/// Hausa headline → Hausa article: 0.583 nDCG@10 with the student against 0.669 with e5).
pub fn choose(
    students: &[(PathBuf, StudentManifest)],
    space: &str,
    query_lang: Option<&str>,
    doc_lang: Option<&str>,
) -> QueryEncoderChoice {
    if query_lang.is_some() && query_lang == doc_lang {
        return QueryEncoderChoice::IndexEncoder;
    }
    let fitting: Vec<&(PathBuf, StudentManifest)> = students.iter().filter(|(_, m)| m.meta.embedding_space == space).collect();
    let per_language = query_lang.and_then(|l| fitting.iter().find(|(_, m)| m.languages.len() == 1 && m.languages[0] == l));
    let multilingual = fitting.iter().filter(|(_, m)| m.languages.len() != 1).min_by_key(|(_, m)| m.name.clone());
    let Some((dir, m)) = per_language.or(multilingual).copied() else { return QueryEncoderChoice::IndexEncoder };
    if query_lang == Some("eng") && m.english_queries == EnglishRoute::Teacher {
        return QueryEncoderChoice::IndexEncoder;
    }
    QueryEncoderChoice::Student(dir.clone())
}

/// The translation table for queries in `query_lang` against documents in `doc_lang` that ships
/// with the installed students of embedding space `space` (`<student>/psq/<lang>.tsv`; the
/// first student by name that has one). None for monolingual searches, whose BM25 leg needs no
/// translation. The table does not depend on which encoder takes the queries' dense leg.
pub fn default_translation_table(space: &str, query_lang: Option<&str>, doc_lang: Option<&str>) -> Option<PathBuf> {
    let lang = query_lang?;
    if Some(lang) == doc_lang {
        return None;
    }
    installed(&models_dir())
        .into_iter()
        .filter(|(_, m)| m.meta.embedding_space == space)
        .map(|(dir, _)| dir.join(super::delta::TABLES_DIR).join(format!("{lang}.tsv")))
        .find(|p| p.is_file())
}

/// The installed student (under [`models_dir`]) that encodes queries by default for an index in
/// embedding space `space`, if any (see [`choose`]).
pub fn default_student(space: &str, query_lang: Option<&str>, doc_lang: Option<&str>) -> Option<PathBuf> {
    match choose(&installed(&models_dir()), space, query_lang, doc_lang) {
        QueryEncoderChoice::Student(dir) => Some(dir),
        QueryEncoderChoice::IndexEncoder => None,
    }
}
