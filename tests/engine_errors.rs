//! `optical::Error` variants an application can match on, from real situations: a second writer
//! on a locked index, a directory that is not an index, an encoder whose fingerprint or space
//! does not fit the index, a file with a bad line.
mod common;

use std::sync::Arc;

use optical::Error;
use optical::encoder::{Encoder, default_device};
use optical::engine::{Document, Index, IndexConfig};
use optical::ingest::{IngestOptions, ingest};
use optical::search::Searcher;

#[test]
fn a_second_writer_on_a_locked_index_is_locked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let index = Index::create(&dir, IndexConfig::text_only()).unwrap();
    // Another open for writing: the directory lock is held by `index`.
    match Index::open(&dir) {
        Err(Error::Locked { dir: locked, message }) => {
            assert_eq!(locked, dir);
            assert!(message.contains("already open for writing"), "{message}");
        }
        other => panic!("expected Error::Locked, got {:?}", other.err()),
    }
    // A second writer of the same handle.
    let _writer = index.writer().unwrap();
    match index.writer() {
        Err(Error::Locked { message, .. }) => assert!(message.contains("already has a writer"), "{message}"),
        other => panic!("expected Error::Locked, got {:?}", other.err()),
    }
}

#[test]
fn a_directory_that_is_not_an_index_is_not_an_index() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
    for result in [Index::open(tmp.path()).err(), Index::open_read_only(tmp.path()).err()] {
        match result {
            Some(Error::NotAnIndex { dir, message }) => {
                assert_eq!(dir, tmp.path());
                assert!(message.contains("not an Optical index"), "{message}");
            }
            other => panic!("expected Error::NotAnIndex, got {other:?}"),
        }
    }
    // Creating over the user's files is refused as well, without touching them.
    assert!(matches!(Index::create(tmp.path(), IndexConfig::text_only()), Err(Error::AlreadyExists { .. })));
    assert_eq!(std::fs::read_to_string(tmp.path().join("notes.txt")).unwrap(), "mine");
}

#[test]
fn an_encoder_that_does_not_fit_the_index_is_incompatible() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("model-a"), tmp.path().join("model-b"));
    common::tiny::tiny_model(&a, 1);
    common::tiny::tiny_model(&b, 2);
    let device = default_device();
    let enc_a = Arc::new(Encoder::load(&a, &device).unwrap());
    let enc_b = Arc::new(Encoder::load(&b, &device).unwrap());
    assert_ne!(enc_a.info().fingerprint, enc_b.info().fingerprint);

    let dir = tmp.path().join("idx");
    let index = Index::open_or_create_for(&dir, &enc_a).unwrap();
    let mut w = index.writer().unwrap().with_encoder(Arc::clone(&enc_a)).unwrap();
    w.add(Document::new("d1", "the cat sees the dog")).unwrap();
    w.commit().unwrap();
    drop(w);
    // A document encoder with another fingerprint: a writer refuses it...
    match index.writer().unwrap().with_encoder(Arc::clone(&enc_b)) {
        Err(Error::IncompatibleEncoder { message }) => {
            assert!(message.contains(&enc_a.info().fingerprint) && message.contains(&enc_b.info().fingerprint), "{message}")
        }
        other => panic!("expected Error::IncompatibleEncoder, got {:?}", other.err()),
    }
    drop(index);
    // ... and so does an ingest with that model.
    let input = tmp.path().join("docs.jsonl");
    std::fs::write(&input, "{\"id\": \"d2\", \"text\": \"the bird sees the fish\"}\n").unwrap();
    let options = IngestOptions { model: Some(b.clone()), ..IngestOptions::default() };
    assert!(matches!(ingest(&dir, &input, options), Err(Error::IncompatibleEncoder { .. })));
    // A query encoder on a text-only index has nothing to search.
    let text = Index::create(tmp.path().join("text"), IndexConfig::text_only()).unwrap();
    assert!(matches!(Searcher::for_index(&text).with_encoder(enc_a), Err(Error::IncompatibleEncoder { .. })));
}

#[test]
fn a_bad_line_is_an_invalid_document_naming_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("docs.jsonl");
    std::fs::write(&input, "{\"id\": \"a\", \"text\": \"one\"}\nnot json\n{\"id\": \"b\", \"text\": \"two\"}\n").unwrap();
    let dir = tmp.path().join("idx");
    match ingest(&dir, &input, IngestOptions::default()) {
        Err(Error::InvalidDocument { file, line, reason }) => {
            assert_eq!((file.as_path(), line), (input.as_path(), 2));
            assert!(!reason.is_empty());
        }
        other => panic!("expected Error::InvalidDocument, got {other:?}"),
    }
    assert!(!dir.exists(), "a failed ingest leaves no index behind");
    let report = ingest(&dir, &input, IngestOptions { skip_invalid: true, ..IngestOptions::default() }).unwrap();
    assert_eq!((report.added, report.skipped.len(), report.docs), (2, 1, 2));
    assert_eq!(report.skipped[0].line, 2);
}
