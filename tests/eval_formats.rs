//! Readers of TREC runs, TREC/BEIR qrels and BEIR collections: good input loads, bad input is
//! refused with the file and line named.
mod common;

use std::path::Path;

use optical::eval::{BeirCollection, Qrels, Run, read_queries};

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn err_of<T: std::fmt::Debug>(r: anyhow::Result<T>) -> String {
    format!("{:#}", r.expect_err("bad input must be refused"))
}

#[test]
fn trec_run_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("q1 Q0 d1 1 0.5 t\nq1 Q0 d2 2 0.4\n", ":2:", "expected 6 fields"),
        ("q1 Q0 d1 1 0.5 t\n\nq1 Q0 d2 x 0.4 t\n", ":3:", "rank"),
        ("q1 Q0 d1 1 abc t\n", ":1:", "not a number"),
        ("q1 Q0 d1 1 NaN t\n", ":1:", "not finite"),
        ("q1 Q0 d1 1 1 t\nq2 Q0 d1 1 1 t\nq1 Q0 d1 2 0 t\n", ":3:", "first on line 1"),
    ];
    for (i, (text, line, what)) in cases.iter().enumerate() {
        let path = write(dir.path(), &format!("run{i}.trec"), text);
        let msg = err_of(Run::read_trec(&path));
        assert!(msg.contains(&format!("run{i}.trec{line}")), "case {i}: {msg}");
        assert!(msg.contains(what), "case {i}: {msg}");
    }
    let missing = err_of(Run::read_trec(&dir.path().join("nope.trec")));
    assert!(missing.contains("nope.trec"), "{missing}");
}

#[test]
fn qrels_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "q.trec", "q1 0 d1 1\nq1 0 d2\n");
    assert!(err_of(Qrels::read_trec(&path)).contains("q.trec:2:"));
    let path = write(dir.path(), "q2.trec", "q1 0 d1 1\nq1 0 d1 2\n");
    let msg = err_of(Qrels::read_trec(&path));
    assert!(msg.contains("q2.trec:2:") && msg.contains("first on line 1"), "{msg}");
    let path = write(dir.path(), "q3.trec", "q1 0 d1 high\n");
    assert!(err_of(Qrels::read_trec(&path)).contains("q3.trec:1:"));

    let path = write(dir.path(), "b.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\tx\n");
    let msg = err_of(Qrels::read_beir(&path));
    assert!(msg.contains("b.tsv:3:") && msg.contains("not an integer"), "{msg}");
    let path = write(dir.path(), "b2.tsv", "query-id\tcorpus-id\tscore\nq1 d1 1\n");
    let msg = err_of(Qrels::read_beir(&path));
    assert!(msg.contains("b2.tsv:2:") && msg.contains("3 tab-separated"), "{msg}");
}

#[test]
fn beir_qrels_header_is_optional_and_grades_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let with = write(dir.path(), "a.tsv", "query-id\tcorpus-id\tscore\r\nq1\td1\t2\r\nq1\td2\t0\r\n");
    let without = write(dir.path(), "b.tsv", "q1\td1\t2.0\nq1\td2\t0\n");
    let a = Qrels::read_beir(&with).unwrap();
    assert_eq!(a, Qrels::read_beir(&without).unwrap());
    assert_eq!(a.judgements("q1").unwrap()["d1"], 2);
    assert_eq!(a.num_relevant("q1"), 1);
}

#[test]
fn writers_refuse_ids_that_would_break_columns() {
    let mut run = Run::new();
    run.insert("q 1", vec![("d1".to_string(), 1.0)]).unwrap();
    let mut out = Vec::new();
    assert!(err_of(run.write_trec(&mut out, "tag")).contains("whitespace"));
    let mut run = Run::new();
    run.insert("q1", vec![("d1".to_string(), 1.0)]).unwrap();
    assert!(run.write_trec(&mut Vec::new(), "my tag").is_err());
    assert!(run.insert("q2", vec![("d".to_string(), f64::NAN)]).is_err());
    assert!(run.insert("q2", vec![("d".to_string(), 1.0), ("d".to_string(), 2.0)]).is_err());
}

/// A small collection in a temporary directory, with a gzipped corpus.
fn tiny_collection(dir: &Path) {
    use std::io::Write as _;
    let gz = std::fs::File::create(dir.join("corpus.jsonl.gz")).unwrap();
    let mut enc = flate2::write::GzEncoder::new(gz, flate2::Compression::default());
    enc.write_all(b"{\"_id\": \"d1\", \"title\": \"\", \"text\": \"one\"}\n").unwrap();
    enc.finish().unwrap();
    write(
        dir,
        "queries.jsonl",
        "{\"_id\": \"q1\", \"text\": \"first\", \"lang\": \"swa\"}\n\
         {\"_id\": 2, \"text\": \"second\"}\n\
         {\"_id\": \"q3\", \"text\": \"third\", \"lang\": \"swa\"}\n",
    );
    write(dir, "queries.eng.jsonl", "{\"_id\": \"q3\", \"text\": \"THIRD\", \"lang\": \"eng\"}\n{\"_id\": \"q1\", \"text\": \"FIRST\", \"lang\": \"eng\"}\n");
    write(dir, "qrels/test.tsv", "query-id\tcorpus-id\tscore\nq3\td1\t1\nq1\td1\t0\n");
    write(dir, "qrels/dev.tsv", "query-id\tcorpus-id\tscore\n2\td1\t1\n");
}

#[test]
fn beir_split_selects_queries_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    tiny_collection(dir.path());
    let c = BeirCollection::open(dir.path()).unwrap();
    assert_eq!(c.corpus_path().unwrap(), dir.path().join("corpus.jsonl.gz"));
    assert_eq!(c.splits().unwrap(), vec!["dev", "test"]);

    let test = c.load_split("test", None).unwrap();
    let ids: Vec<&str> = test.queries.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(ids, vec!["q1", "q3"]);
    assert_eq!(test.queries[0].lang.as_deref(), Some("swa"));
    assert_eq!(test.qrels.len(), 2);

    // Numeric `_id` is read as its decimal string.
    let dev = c.load_split("dev", None).unwrap();
    assert_eq!(dev.queries[0].id, "2");
    assert_eq!(dev.queries[0].lang, None);

    // The English queries, by bare file name, keep the same ids.
    let eng = c.load_split("test", Some(Path::new("queries.eng.jsonl"))).unwrap();
    let texts: Vec<&str> = eng.queries.iter().map(|q| q.text.as_str()).collect();
    assert_eq!(texts, vec!["THIRD", "FIRST"]);

    // The English file lacks query 2: loading dev with it is refused, naming the query.
    let msg = err_of(c.load_split("dev", Some(Path::new("queries.eng.jsonl"))));
    assert!(msg.contains("\"2\"") && msg.contains("queries.eng.jsonl"), "{msg}");
    let msg = err_of(c.load_split("train", None));
    assert!(msg.contains("\"train\"") && msg.contains("dev, test"), "{msg}");
}

#[test]
fn bad_queries_files_are_refused_with_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "q.jsonl", "{\"_id\": \"a\", \"text\": \"x\"}\n{\"_id\": \"b\"}\n");
    assert!(err_of(read_queries(&p)).contains("q.jsonl:2:"));
    let p = write(dir.path(), "r.jsonl", "{\"_id\": \"a\", \"text\": \"x\"}\n\n{\"_id\": \"a\", \"text\": \"y\"}\n");
    let msg = err_of(read_queries(&p));
    assert!(msg.contains("r.jsonl:3:") && msg.contains("repeats line 1"), "{msg}");
    let p = write(dir.path(), "s.jsonl", "not json\n");
    assert!(err_of(read_queries(&p)).contains("s.jsonl:1:"));
    let empty = tempfile::tempdir().unwrap();
    assert!(err_of(BeirCollection::open(empty.path())).contains("corpus.jsonl"));
}

#[test]
fn shared_collections_load() {
    let Some(data) = common::shared_data() else { return };
    let scifact = BeirCollection::open(data.join("eval/scifact")).unwrap();
    // Numbers from the data README: BEIR's 300 test / 809 train queries, 339 / 919 qrels.
    let test = scifact.load_split("test", None).unwrap();
    assert_eq!((test.queries.len(), test.qrels.num_judgements()), (300, 339));
    let train = scifact.load_split("train", None).unwrap();
    assert_eq!((train.queries.len(), train.qrels.num_judgements()), (809, 919));

    let xq = BeirCollection::open(data.join("eval/xquad-r-deu")).unwrap();
    let deu = xq.load_split("test", None).unwrap();
    let eng = xq.load_split("test", Some(Path::new("queries.eng.jsonl"))).unwrap();
    assert_eq!(deu.queries.len(), 1190);
    let ids = |s: &optical::eval::BeirSplit| s.queries.iter().map(|q| q.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&deu), ids(&eng));
    assert_eq!(eng.queries[0].lang.as_deref(), Some("eng"));

    // Every collection in the shared data loads each of its splits.
    for entry in std::fs::read_dir(data.join("eval")).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let c = BeirCollection::open(&dir).unwrap();
        for split in c.splits().unwrap() {
            let s = c.load_split(&split, None).unwrap();
            assert!(!s.queries.is_empty(), "{} {split}", dir.display());
        }
    }
}

#[test]
fn corpus_fingerprint_follows_content_not_compression() {
    let a = tempfile::tempdir().unwrap();
    tiny_collection(a.path());
    let b = tempfile::tempdir().unwrap();
    tiny_collection(b.path());
    // Same content, stored plain instead of gzipped.
    std::fs::remove_file(b.path().join("corpus.jsonl.gz")).unwrap();
    write(b.path(), "corpus.jsonl", "{\"_id\": \"d1\", \"title\": \"\", \"text\": \"one\"}\n");
    let fa = BeirCollection::open(a.path()).unwrap().corpus_fingerprint().unwrap();
    let fb = BeirCollection::open(b.path()).unwrap().corpus_fingerprint().unwrap();
    assert_eq!(fa, fb);
    assert_eq!(fa.len(), 16);
    write(b.path(), "corpus.jsonl", "{\"_id\": \"d1\", \"title\": \"\", \"text\": \"two\"}\n");
    assert_ne!(BeirCollection::open(b.path()).unwrap().corpus_fingerprint().unwrap(), fa);
}
