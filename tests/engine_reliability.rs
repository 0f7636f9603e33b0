//! Reliability: what happens after a failed commit, when the lock file is deleted, when an index
//! is created in a folder that holds other files, with over-long keys, huge result counts and
//! corrupt files. Real tantivy, real sled, real vector segments; each test failed before its fix.
mod common;

use std::path::Path;

use optical::engine::{Document, Index, IndexConfig, KeyMapState};

const DIM: usize = 8;

/// A deterministic vector for a key (not normalised: only equality matters here).
fn vector_for(key: &str) -> Vec<f32> {
    common::hashed_vector(key, DIM)
}

fn doc(key: &str) -> Document {
    Document::new(key, format!("body of {key} about rivers"))
        .with_lang("eng")
        .with_vector(vector_for(key))
}

/// Every key has exactly one live document whose vector is the one it was given, and the
/// BM25 side and the vector side count the same documents.
fn assert_consistent(index: &Index, keys: &[String]) {
    let snap = index.snapshot();
    assert_eq!(snap.num_docs(), keys.len() as u64, "documents");
    assert_eq!(snap.num_vectors(), keys.len() as u64, "vectors");
    for k in keys {
        let id = snap
            .id_of(k)
            .unwrap()
            .unwrap_or_else(|| panic!("key {k} missing"));
        assert_eq!(
            snap.vector(id),
            Some(vector_for(k)),
            "vector of {k} (id {id})"
        );
    }
}

fn keys(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

// ---------------------------------------------------------------------------------------------
// D1: a writer created after a failed commit starts from the latest commit on disk.

#[test]
fn a_writer_after_a_commit_that_failed_late_starts_from_that_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let index = Index::create(&dir, IndexConfig::with_vectors(DIM)).unwrap();
    let (a, b, c) = (keys("a", 5), keys("b", 5), keys("c", 5));
    let mut w = index.writer().unwrap();
    for k in &a {
        w.add(doc(k)).unwrap();
    }
    assert_eq!(w.commit().unwrap().generation, 1);
    for k in &b {
        w.add(doc(k)).unwrap();
    }
    index.fail_next_keymap_update();
    let err = format!("{:#}", w.commit().unwrap_err());
    assert!(err.contains("the commit itself succeeded"), "{err}");
    drop(w);

    // The commit reached disk: a new writer must build on it, not on the generation before.
    let mut w = index.writer().unwrap();
    assert_eq!(index.snapshot().generation(), 2);
    assert!(
        w.id_of("b0").unwrap().is_some(),
        "the new writer does not know the keys of generation 2"
    );
    assert!(
        w.add(doc("b0")).is_err(),
        "b0 was committed: adding it again must be refused"
    );
    for k in &c {
        w.add(doc(k)).unwrap();
    }
    assert_eq!(w.commit().unwrap().generation, 3);
    drop(w);
    let all: Vec<String> = a.iter().chain(&b).chain(&c).cloned().collect();
    assert_consistent(&index, &all);
    drop(index);

    let index = Index::open(&dir).unwrap();
    assert_consistent(&index, &all);
    for k in &all {
        assert_eq!(
            index.keymap_lookup(k).unwrap(),
            index.snapshot().id_of(k).unwrap(),
            "sled entry of {k}"
        );
    }
}

#[test]
fn open_reports_documents_without_vectors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let seg_name = {
        let index = Index::create(&dir, IndexConfig::with_vectors(DIM)).unwrap();
        let mut w = index.writer().unwrap();
        for k in keys("a", 4) {
            w.add(doc(&k)).unwrap();
        }
        w.commit().unwrap();
        index.snapshot().meta().segments[0].clone()
    };
    // Replace the committed segment by one whose rows carry other ids (what D1 used to do).
    let path = dir.join("vectors").join(&seg_name);
    std::fs::remove_file(&path).unwrap();
    let mut sw =
        optical_storage::SegmentWriter::create(&path, DIM, optical_storage::ElemType::F32).unwrap();
    for id in 100..104u64 {
        sw.push(id, &vector_for("x")).unwrap();
    }
    sw.finish().unwrap();
    for open in [Index::open(&dir).err(), Index::open_read_only(&dir).err()] {
        let err = format!(
            "{:#}",
            open.expect("opening an index whose documents lack vectors must fail")
        );
        assert!(
            err.contains("has no vector") && err.contains(&seg_name),
            "{err}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// D2: the write lock cannot be defeated by deleting the lock file, and a busy sled is "locked",
// never "corrupt".

#[test]
fn deleting_the_lock_file_does_not_let_a_second_writer_in() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let a = keys("a", 5);
    let index = Index::create(&dir, IndexConfig::with_vectors(DIM)).unwrap();
    let mut w = index.writer().unwrap();
    for k in &a {
        w.add(doc(k)).unwrap();
    }
    w.commit().unwrap();
    std::fs::remove_file(dir.join("optical.lock")).unwrap();

    let err = format!(
        "{:#}",
        Index::open(&dir)
            .err()
            .expect("a second writable open must fail")
    );
    assert!(err.contains("open for writing"), "{err}");
    assert!(Index::open_or_create(&dir, IndexConfig::with_vectors(DIM)).is_err());

    // The first writer's key map is intact and it keeps working.
    assert_eq!(index.keymap_len(), Some(5));
    assert!(index.keymap_lookup("a3").unwrap().is_some());
    w.add(doc("b0")).unwrap();
    w.commit().unwrap();
    drop(w);
    drop(index);
    let index = Index::open(&dir).unwrap();
    assert_eq!(index.keymap_state(), Some(&KeyMapState::Current));
    let mut all = a.clone();
    all.push("b0".into());
    assert_consistent(&index, &all);
}

/// A new index at `dir` holding one committed document, `a0`.
fn index_with_a0(dir: &Path) -> Index {
    let index = Index::create(dir, IndexConfig::with_vectors(DIM)).unwrap();
    let mut w = index.writer().unwrap();
    w.add(doc("a0")).unwrap();
    w.commit().unwrap();
    drop(w);
    index
}

#[test]
fn a_key_map_held_by_a_writer_is_reported_locked_not_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let index = index_with_a0(&dir);
    let snap = index.snapshot();
    let opened = optical::engine::keymap::KeyMap::open_or_rebuild(&dir.join("keymap"), &snap);
    let err = format!(
        "{:#}",
        opened.err().expect("sled is held by the open index")
    );
    assert!(err.contains("locked") && err.contains("keymap"), "{err}");
    assert!(!err.contains("rebuild"), "{err}");
    assert_eq!(
        index.keymap_lookup("a0").unwrap(),
        snap.id_of("a0").unwrap()
    );
}

// ---------------------------------------------------------------------------------------------
// D3: an index is created only in an empty directory (or over an interrupted creation).

/// A folder shaped like the one of issue 13: `keymap/`, `vectors/`, `text.tmp/`, a file in each.
fn user_folder(dir: &Path) -> Vec<std::path::PathBuf> {
    ["keymap", "vectors", "text.tmp"]
        .iter()
        .map(|sub| {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
            let f = dir.join(sub).join("mine.txt");
            std::fs::write(&f, "the user's file").unwrap();
            f
        })
        .collect()
}

#[test]
fn create_refuses_a_folder_that_holds_other_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("D");
    let files = user_folder(&dir);
    for res in [
        Index::create(&dir, IndexConfig::with_vectors(DIM)).err(),
        Index::open_or_create(&dir, IndexConfig::text_only()).err(),
    ] {
        let err = format!(
            "{:#}",
            res.expect("creating an index over the user's files must fail")
        );
        assert!(
            err.contains("not empty") && err.contains("keymap") && err.contains("text.tmp"),
            "{err}"
        );
    }
    for f in &files {
        assert!(f.is_file(), "{} was deleted", f.display());
    }
    assert!(
        !dir.join("optical.lock").exists() && !dir.join("text").exists(),
        "create left files behind"
    );

    let plain = tmp.path().join("notes");
    std::fs::create_dir(&plain).unwrap();
    std::fs::write(plain.join("notes.txt"), "x").unwrap();
    let err = format!(
        "{:#}",
        Index::create(&plain, IndexConfig::text_only())
            .err()
            .unwrap()
    );
    assert!(err.contains("notes.txt"), "{err}");

    // Empty and absent directories are fine.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    Index::create(&empty, IndexConfig::text_only()).unwrap();
    Index::create(tmp.path().join("new/nested"), IndexConfig::text_only()).unwrap();
}

#[test]
fn create_resumes_over_an_interrupted_creation() {
    // What a crash during `Index::create` leaves: the lock file, an empty `vectors/` and the
    // tantivy staging directory.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    std::fs::create_dir_all(dir.join("vectors")).unwrap();
    std::fs::create_dir_all(dir.join("text.tmp")).unwrap();
    std::fs::write(dir.join("text.tmp").join("meta.json"), "{").unwrap();
    std::fs::write(dir.join("optical.lock"), "").unwrap();
    let index = Index::create(&dir, IndexConfig::with_vectors(DIM)).unwrap();
    assert_eq!(index.snapshot().generation(), 0);
    assert!(!dir.join("text.tmp").exists());
}

// ---------------------------------------------------------------------------------------------
// D4: keys longer than tantivy can index are refused, not cut.

#[test]
fn over_long_keys_are_refused_with_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::create(tmp.path().join("idx"), IndexConfig::with_vectors(DIM)).unwrap();
    let mut w = index.writer().unwrap();
    let limit = optical::engine::MAX_KEY_BYTES;
    // The longest allowed key round-trips, and upserting it replaces it.
    let longest = "k".repeat(limit);
    w.add(doc(&longest)).unwrap();
    w.commit().unwrap();
    w.upsert(doc(&longest)).unwrap();
    w.commit().unwrap();
    assert_eq!(index.snapshot().num_docs(), 1);
    assert_eq!(
        index
            .snapshot()
            .document_by_key(&longest)
            .unwrap()
            .unwrap()
            .key,
        longest
    );
    for len in [limit + 1, 65_536, 70_000] {
        let key = "k".repeat(len);
        for res in [
            w.add(doc(&key)).err(),
            w.upsert(doc(&key)).err(),
            w.add_batch([doc(&key)]).err(),
        ] {
            let err = format!(
                "{:#}",
                res.unwrap_or_else(|| panic!("a {len}-byte key must be refused"))
            );
            assert!(
                err.contains(&format!("{len} bytes")) && err.contains(&limit.to_string()),
                "{err}"
            );
        }
    }
    w.commit().unwrap();
    assert_eq!(index.snapshot().num_docs(), 1);
}

// ---------------------------------------------------------------------------------------------
// Queries without words: the library returns no BM25 hits (the CLI refuses them).

#[test]
fn bm25_queries_without_words_find_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::create(tmp.path().join("idx"), IndexConfig::with_vectors(DIM)).unwrap();
    let mut w = index.writer().unwrap();
    w.add(doc("a0")).unwrap();
    w.commit().unwrap();
    let searcher = optical::search::Searcher::for_index(&index);
    for q in ["", "  ", "?!", "…—"] {
        assert!(
            common::bm25(&index.snapshot(), q, 10, None).unwrap().is_empty(),
            "{q:?}"
        );
        let req = optical::search::SearchRequest::new(q).with_mode(optical::search::Mode::Bm25);
        assert!(searcher.search(&req).unwrap().hits.is_empty(), "{q:?}");
    }
}

/// Opening an index for writing twice in one process says so (and how to share the handle);
/// a lock held by another process says that instead.
#[test]
fn a_second_writable_open_says_who_holds_the_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let index = Index::create(&dir, IndexConfig::with_vectors(DIM)).unwrap();
    let err = format!("{:#}", Index::open(&dir).err().expect("a second writable open must fail"));
    assert!(err.contains("in this process") && err.contains("clone") && !err.contains("another process"), "{err}");
    // Another spelling of the same directory is the same index.
    let other = tmp.path().join(".").join("idx");
    let err = format!("{:#}", Index::open(&other).err().expect("a second writable open must fail"));
    assert!(err.contains("in this process"), "{err}");
    drop(index);
    // Released with the handle: the next open works, and holds the lock in its turn.
    let index = Index::open(&dir).unwrap();
    drop(index);

    // Another process holding the lock: flock(1) takes the same kind of lock on optical.lock.
    let out = std::process::Command::new("flock")
        .args(["--version"])
        .output();
    if out.is_err() {
        eprintln!("SKIPPED the other-process half: no flock(1) on this machine");
        return;
    }
    let mut holder = std::process::Command::new("flock")
        .arg(dir.join("optical.lock"))
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let err = loop {
        match Index::open(&dir) {
            Err(e) => break format!("{e:#}"),
            Ok(i) => {
                drop(i);
                assert!(start.elapsed().as_secs() < 10, "flock never took the lock");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    };
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(err.contains("by another process") && !err.contains("in this process"), "{err}");
}

/// sled lets go of its files a moment after its last handle is dropped (its background
/// threads still hold them: the fuzz run saw `could not acquire lock` on a reopen right after a
/// close in the same process). The index's own lock already rules out another writer, so a
/// writable open waits a little for sled instead of failing: here sled is held by another
/// handle for 300 ms after the index was closed.
#[test]
fn a_writable_open_waits_for_sled_to_let_go() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    drop(index_with_a0(&dir));
    let held = sled::open(dir.join("keymap")).unwrap();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(held);
    });
    let index = Index::open(&dir).unwrap_or_else(|e| panic!("open while sled lets go: {e:#}"));
    releaser.join().unwrap();
    assert_eq!(index.keymap_state(), Some(&KeyMapState::Current));
    assert_consistent(&index, &["a0".to_string()]);
}
