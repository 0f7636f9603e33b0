//! Verifying an index directory end to end, read-only: the checksums of the tantivy files of the
//! last commit, the CRCs of its vector segments and tombstones, and that documents and vectors
//! agree. Every problem names the file it is about. tantivy verifies no checksum when it reads,
//! so a damaged byte can go unnoticed by a search: this is the way to find it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use optical_storage::{Segment, Tombstones};

use super::guard::guard;
use super::meta::CommitMeta;
use super::{Index, TEXT_DIR, VECTORS_DIR, vectors};
use crate::encoder::codebook::CODEBOOK_FILE;

/// One thing wrong with an index, and the file it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The damaged or inconsistent file (or directory, for problems that span files).
    pub file: PathBuf,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.message)
    }
}

/// What [`check`] looked at and found.
#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    /// Files whose checksum was verified.
    pub files_checked: usize,
    /// Everything found wrong (empty for a sound index).
    pub problems: Vec<Problem>,
}

/// Checks the last commit of the index at `dir` without modifying anything (no lock needed).
/// Errors only when `dir` is not an index at all; damage is reported in the [`CheckReport`].
///
/// A writer may be at work meanwhile (in this process or another): a background tantivy merge
/// that finishes during the check replaces segments and deletes their files, which would read as
/// missing files. So a check that finds problems looks at `meta.json` again, and when the
/// committed segments changed under it, checks the new state (a few times at most).
pub fn check(dir: &Path) -> crate::Result<CheckReport> {
    const ATTEMPTS: usize = 3;
    let text_dir = dir.join(TEXT_DIR);
    if !Index::exists(dir) {
        return Err(super::not_an_index(dir));
    }
    let tantivy = tantivy::Index::open_in_dir(&text_dir)
        .with_context(|| format!("opening the tantivy index in {}", text_dir.display()))?;
    let mut attempt = 1;
    loop {
        let metas = load_metas(&tantivy, &text_dir)?;
        let report = check_commit(dir, &tantivy, &text_dir, &metas);
        if report.problems.is_empty() || attempt == ATTEMPTS || !segments_changed(&metas, &load_metas(&tantivy, &text_dir)?) {
            return Ok(report);
        }
        attempt += 1;
    }
}

fn load_metas(tantivy: &tantivy::Index, text_dir: &Path) -> anyhow::Result<tantivy::IndexMeta> {
    tantivy.load_metas().with_context(|| format!("reading {}", text_dir.join("meta.json").display()))
}

/// Whether the committed tantivy segments differ between two reads of `meta.json`.
fn segments_changed(a: &tantivy::IndexMeta, b: &tantivy::IndexMeta) -> bool {
    let ids = |m: &tantivy::IndexMeta| m.segments.iter().map(|s| (s.id(), s.num_deleted_docs())).collect::<Vec<_>>();
    a.opstamp != b.opstamp || ids(a) != ids(b)
}

/// The problems of the commit `metas` describes.
fn check_commit(dir: &Path, tantivy: &tantivy::Index, text_dir: &Path, metas: &tantivy::IndexMeta) -> CheckReport {
    let mut report = CheckReport::default();
    let meta = match CommitMeta::from_payload(metas.payload.as_deref()) {
        Ok(m) => Some(m),
        Err(e) => {
            report.problems.push(Problem {
                file: text_dir.join("meta.json"),
                message: format!("{e:#}"),
            });
            None
        }
    };
    check_text_files(tantivy, text_dir, metas, &mut report);
    if let Some(meta) = &meta {
        check_vector_files(&dir.join(VECTORS_DIR), meta, &mut report);
        if meta.config.token_codebook.is_some() {
            report.files_checked += 1;
            if let Err(e) = super::load_index_codebook(dir, &meta.config) {
                report.problems.push(Problem { file: dir.join(CODEBOOK_FILE), message: e.to_string() });
            }
        }
    }
    // Agreement needs every file readable; only worth trying on an otherwise sound index.
    if report.problems.is_empty() {
        match Index::open_read_only(dir) {
            Ok(_) => {} // opening checks that documents and vectors agree
            Err(e) => report.problems.push(Problem {
                file: dir.to_path_buf(),
                message: format!("{e:#}"),
            }),
        }
    }
    report
}

/// Verifies the footer checksum of every file of the committed tantivy segments.
fn check_text_files(
    tantivy: &tantivy::Index,
    text_dir: &Path,
    metas: &tantivy::IndexMeta,
    report: &mut CheckReport,
) {
    check_segments(tantivy, text_dir, &metas.segments, report);
}

/// Verifies the footer checksum of every file of the given committed tantivy segments, and that
/// each has the files every Optical segment has (and the delete file its meta names). Also used
/// by a commit on the segments it just wrote.
///
/// A segment's files are the `<segment uuid>.*` files, except delete files of other opstamps
/// than the committed one: a writer writes `<uuid>.<opstamp>.del` before its commit point, so a
/// writer killed mid-commit leaves a partial one beside the committed segment. No commit names
/// it and the next writable open collects it, so it is a leftover, not damage.
pub(crate) fn check_segments(
    tantivy: &tantivy::Index,
    text_dir: &Path,
    segments: &[tantivy::SegmentMeta],
    report: &mut CheckReport,
) {
    let mut present: Vec<String> = match std::fs::read_dir(text_dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) => {
            report.problems.push(Problem {
                file: text_dir.to_path_buf(),
                message: format!("cannot list: {e}"),
            });
            return;
        }
    };
    present.sort();
    for segment in segments {
        let uuid = segment.id().uuid_string();
        let committed_del = segment.delete_opstamp().map(|_| {
            let del = segment.relative_path(tantivy::index::SegmentComponent::Delete);
            del.to_string_lossy().into_owned()
        });
        let files: Vec<&String> = present
            .iter()
            .filter(|n| n.split('.').next() == Some(uuid.as_str()))
            .filter(|n| !n.ends_with(".del") || Some(n.as_str()) == committed_del.as_deref())
            .collect();
        if let Some(del) = &committed_del {
            if !files.iter().any(|n| *n == del) {
                report.problems.push(Problem {
                    file: text_dir.join(del),
                    message: "missing (the commit names this delete file)".into(),
                });
            }
        }
        for ext in ALWAYS_PRESENT {
            if !files.iter().any(|n| n.ends_with(&format!(".{ext}"))) {
                let file = text_dir.join(format!("{uuid}.{ext}"));
                report.problems.push(Problem {
                    file,
                    message: "missing (the commit names this segment)".into(),
                });
            }
        }
        for name in files {
            let path = text_dir.join(name);
            report.files_checked += 1;
            let res = guard(text_dir, "verifying a checksum", || {
                Ok(tantivy.directory().validate_checksum(Path::new(name))?)
            });
            match res {
                Ok(true) => {}
                Ok(false) => report.problems.push(Problem {
                    file: path,
                    message: "checksum mismatch: the file is damaged".into(),
                }),
                Err(e) => report.problems.push(Problem {
                    file: path,
                    message: format!("unreadable: {e:#}"),
                }),
            }
        }
    }
}

/// Files every tantivy segment of an Optical index has (its schema indexes, stores and has
/// fast fields); others (`.del`, ...) may be absent.
const ALWAYS_PRESENT: [&str; 5] = ["idx", "term", "store", "fast", "fieldnorm"];

/// Opens (and so CRC-checks) every vector segment, int8 companion and tombstone file the commit
/// names. (Files no commit names are leftovers of an interrupted commit, not damage: the next
/// writable open deletes them.)
fn check_vector_files(vectors_dir: &Path, meta: &CommitMeta, report: &mut CheckReport) {
    let mut named: Vec<String> = meta.segments.clone();
    if meta.config.elem.has_int8_companion() {
        named.extend(meta.segments.iter().map(|s| vectors::companion_name(s)));
    }
    for name in &named {
        let path = vectors_dir.join(name);
        report.files_checked += 1;
        if let Err(e) = Segment::open(&path) {
            report.problems.push(Problem {
                file: path,
                message: format!("{e:#}"),
            });
        }
    }
    if let Some(name) = &meta.tombstones {
        let path = vectors_dir.join(name);
        report.files_checked += 1;
        if let Err(e) = Tombstones::read(&path) {
            report.problems.push(Problem {
                file: path,
                message: format!("{e:#}"),
            });
        }
    }
}
