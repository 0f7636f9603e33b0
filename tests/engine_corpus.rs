//! The JSONL corpus reader and `optical index` on bad input: every kind of bad line is reported
//! with its file and line number, and the index is left intact.
mod common;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use optical::corpus::{BadLineKind, CorpusReader, read_corpus};
use optical::engine::Index;

fn optical(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_optical")).args(args).output().unwrap()
}

fn write(path: &Path, bytes: &[u8]) -> PathBuf {
    std::fs::write(path, bytes).unwrap();
    path.to_path_buf()
}

/// A file with one bad line of each kind, between good ones (line numbers in comments).
fn bad_file(dir: &Path) -> PathBuf {
    let mut b: Vec<u8> = Vec::new();
    b.extend_from_slice(b"{\"id\":\"g1\",\"title\":\"Good one\",\"text\":\"first good document zebra\",\"lang\":\"eng\"}\n"); // 1
    b.extend_from_slice(b"this is not json\n"); // 2
    b.extend_from_slice(b"{\"id\":\"u1\",\"text\":\"bad bytes \xff\xfe here\"}\n"); // 3
    b.extend_from_slice(b"{\"title\":\"no id\",\"text\":\"missing id\"}\n"); // 4
    b.extend_from_slice(b"{\"id\":\"g1\",\"text\":\"duplicate of line one\"}\n"); // 5
    b.extend_from_slice(b"{\"id\":\"e1\",\"title\":\"\",\"text\":\"   \"}\n"); // 6
    b.extend_from_slice(b"\n"); // 7: blank, skipped
    b.extend_from_slice(b"{\"id\":\"f1\",\"text\":42}\n"); // 8
    b.extend_from_slice(b"[1,2,3]\n"); // 9
    b.extend_from_slice(b"{\"_id\":\"g2\",\"title\":\"BEIR style\",\"text\":\"second good document yak\"}\n"); // 10
    write(&dir.join("bad.jsonl"), &b)
}

#[test]
fn reader_reports_each_kind_of_bad_line_with_its_number() {
    let tmp = tempfile::tempdir().unwrap();
    let path = bad_file(tmp.path());
    let corpus = read_corpus(&path).unwrap();
    let good: Vec<&str> = corpus.docs.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(good, vec!["g1", "g2"]);
    let bad: Vec<(usize, BadLineKind)> = corpus.bad.iter().map(|b| (b.line, b.kind.clone())).collect();
    assert_eq!(
        bad,
        vec![
            (2, BadLineKind::NotJson),
            (3, BadLineKind::InvalidUtf8),
            (4, BadLineKind::MissingId),
            (5, BadLineKind::DuplicateId { first_line: 1 }),
            (6, BadLineKind::EmptyText),
            (8, BadLineKind::BadField),
            (9, BadLineKind::NotJson),
        ]
    );
    for b in &corpus.bad {
        let shown = b.to_string();
        assert!(shown.starts_with(&format!("{}:{}: ", path.display(), b.line)), "{shown}");
    }
    assert_eq!(corpus.docs[0].lang.as_deref(), Some("eng"));
    assert_eq!(corpus.docs[1].title, "BEIR style");
}

#[test]
fn reader_detects_gzip_by_magic_bytes_and_accepts_beir_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = "\u{feff}{\"_id\": 17, \"title\": \"T\", \"text\": \"body\", \"extra\": [1]}\n{\"id\":\"x\",\"text\":\"y\",\"vector\":[0.5,-1]}\n";
    // A gzip file whose name does not say so.
    let path = tmp.path().join("corpus.data");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::default());
    gz.write_all(plain.as_bytes()).unwrap();
    gz.finish().unwrap();
    let docs: Vec<_> = CorpusReader::open(&path).unwrap().map(|r| r.unwrap().unwrap().1).collect();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].id, "17");
    assert_eq!(docs[0].text, "body");
    assert_eq!(docs[1].vector, Some(vec![0.5, -1.0]));
    // A truncated gzip stream is a read error naming the file, not a silent short read.
    let bytes = std::fs::read(&path).unwrap();
    let cut = write(&tmp.path().join("cut.gz"), &bytes[..bytes.len() - 6]);
    let err = read_corpus(&cut).unwrap_err();
    assert!(format!("{err:#}").contains("cut.gz"), "{err:#}");
    // A missing file names itself.
    let err = read_corpus(tmp.path().join("absent.jsonl")).unwrap_err();
    assert!(format!("{err:#}").contains("absent.jsonl"));
}

#[test]
fn cli_reports_bad_lines_and_leaves_the_index_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let good = write(
        &tmp.path().join("good.jsonl"),
        b"{\"id\":\"a\",\"text\":\"alpha document about lions\"}\n{\"id\":\"b\",\"text\":\"beta document about tigers\"}\n",
    );
    let out = optical(&["index".as_ref(), dir.as_os_str(), "--input".as_ref(), good.as_os_str(), "--lang".as_ref(), "eng".as_ref()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Default policy: report every bad line, index nothing.
    let bad = bad_file(tmp.path());
    let out = optical(&["index".as_ref(), dir.as_os_str(), "--input".as_ref(), bad.as_os_str()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for line in [2, 3, 4, 5, 6, 8, 9] {
        assert!(err.contains(&format!("bad.jsonl:{line}: ")), "line {line} not reported:\n{err}");
    }
    assert!(err.contains("7 bad line(s)") && err.contains("nothing was indexed"), "{err}");
    for kind in ["not valid JSON", "invalid UTF-8", "missing or empty `id`", "duplicate id `g1`", "no text", "`text` must be a string"] {
        assert!(err.contains(kind), "missing `{kind}` in:\n{err}");
    }
    {
        let index = Index::open(&dir).unwrap(); // opens cleanly: nothing corrupt, nothing half-written
        let snap = index.snapshot();
        assert_eq!(snap.num_docs(), 2);
        assert!(common::bm25(&snap, "zebra", 5, None).unwrap().is_empty());
        assert_eq!(common::bm25(&snap, "lions", 5, None).unwrap()[0].key, "a");
    }

    // --skip-invalid: the good lines go in, the bad ones are still reported.
    let out = optical(&["index".as_ref(), dir.as_os_str(), "--input".as_ref(), bad.as_os_str(), "--skip-invalid".as_ref()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.jsonl:9: "));
    assert!(String::from_utf8_lossy(&out.stdout).contains("7 bad lines skipped"));
    let index = Index::open_read_only(&dir).unwrap();
    let snap = index.snapshot();
    assert_eq!(snap.num_docs(), 4);
    assert_eq!(common::bm25(&snap, "zebra", 5, None).unwrap()[0].key, "g1");
    assert_eq!(common::bm25(&snap, "yak", 5, None).unwrap()[0].key, "g2");

    // Search and info work on it; search filters by language.
    let out = optical(&["search".as_ref(), dir.as_os_str(), "document".as_ref(), "--json".as_ref()]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["hits"].as_array().unwrap().len(), 4);
    let out = optical(&["search".as_ref(), dir.as_os_str(), "document".as_ref(), "--lang".as_ref(), "eng".as_ref(), "--json".as_ref()]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&str> = v["hits"].as_array().unwrap().iter().map(|h| h["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), 3, "{keys:?}"); // a, b and g1 are eng; g2 has no lang (und)
    let out = optical(&["info".as_ref(), dir.as_os_str()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("documents    4"));

    // A directory that is not an index is an error naming it.
    let out = optical(&["search".as_ref(), tmp.path().as_os_str(), "x".as_ref()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an Optical index"));
}

#[test]
fn cli_indexes_vectors_from_jsonl_and_upserts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let f = write(
        &tmp.path().join("v.jsonl"),
        b"{\"id\":\"a\",\"text\":\"one\",\"vector\":[1,0,0]}\n{\"id\":\"b\",\"text\":\"two\",\"vector\":[0,1,0]}\n",
    );
    let out = optical(&["index".as_ref(), dir.as_os_str(), "--input".as_ref(), f.as_os_str(), "--dim".as_ref(), "3".as_ref()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Re-indexing a key replaces it.
    let f2 = write(&tmp.path().join("v2.jsonl"), b"{\"id\":\"a\",\"text\":\"uno\",\"vector\":[0,0,1]}\n");
    let out = optical(&["index".as_ref(), dir.as_os_str(), "--input".as_ref(), f2.as_os_str()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 replaced"));
    // A line without a vector in a vector index is refused with its line number.
    let f3 = write(&tmp.path().join("v3.jsonl"), b"{\"id\":\"c\",\"text\":\"three\",\"vector\":[0,0,1]}\n{\"id\":\"d\",\"text\":\"four\"}\n");
    let out = optical(&["index".as_ref(), dir.as_os_str(), "--input".as_ref(), f3.as_os_str()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("v3.jsonl:2") && err.contains("no vector"), "{err}");
    let index = Index::open(&dir).unwrap();
    let snap = index.snapshot();
    assert_eq!(snap.num_docs(), 2);
    assert_eq!(snap.num_vectors(), 2);
    let top = common::dense(&snap, &[0.0, 0.0, 1.0], 1).unwrap();
    assert_eq!(snap.document(top[0].id).unwrap().unwrap().body, "uno");
}
