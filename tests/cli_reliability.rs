//! `optical index` and `optical search` through the binary on the inputs of issue 13: a folder
//! that is not an index, over-long ids, missing or bad input files, huge `-k`. No model needed.
use std::path::Path;
use std::process::{Command, Output};

fn optical(args: &[&str]) -> Output {
    optical_with_env(args, &[])
}

fn optical_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_optical"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("running optical")
}

fn ok(args: &[&str]) -> String {
    let out = optical(args);
    assert!(
        out.status.success(),
        "optical {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = optical(args);
    assert!(
        !out.status.success(),
        "optical {args:?} should fail; stdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write_docs(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn docs(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| serde_json::json!({"id": format!("d{i}"), "title": "", "text": format!("river number {i} flows"), "lang": "eng"}).to_string())
        .collect()
}

#[test]
fn index_refuses_a_folder_that_is_not_an_index() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("docs.jsonl");
    write_docs(&input, &docs(3));
    let d = tmp.path().join("D");
    let mut files = Vec::new();
    for sub in ["keymap", "vectors", "text.tmp"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
        let f = d.join(sub).join("mine.txt");
        std::fs::write(&f, "the user's file").unwrap();
        files.push(f);
    }
    let err = fails(&[
        "index",
        d.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ]);
    assert!(
        err.contains("not empty") && err.contains("vectors/"),
        "{err}"
    );
    for f in &files {
        assert!(f.is_file(), "{} was deleted", f.display());
    }
}

#[test]
fn index_reports_over_long_ids_by_line() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("docs.jsonl");
    let mut lines = docs(3);
    lines.insert(
        1,
        serde_json::json!({"id": "x".repeat(70_000), "text": "too long an id"}).to_string(),
    );
    write_docs(&input, &lines);
    let idx = tmp.path().join("idx");
    let (idx, input_s) = (idx.to_str().unwrap(), input.to_str().unwrap());
    let err = fails(&["index", idx, "--input", input_s]);
    assert!(
        err.contains(&format!("{input_s}:2:")) && err.contains("70000 bytes"),
        "{err}"
    );
    let out = ok(&["index", idx, "--input", input_s, "--skip-invalid"]);
    assert!(
        out.contains("indexed 3 documents") && out.contains("1 bad lines skipped"),
        "{out}"
    );
}

#[test]
fn search_with_a_huge_k_lists_every_match() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("docs.jsonl");
    write_docs(&input, &docs(3));
    let idx = tmp.path().join("idx");
    let idx = idx.to_str().unwrap();
    ok(&["index", idx, "--input", input.to_str().unwrap()]);
    for k in ["4294967296", "18446744073709551615"] {
        let out = ok(&["search", idx, "river", "-k", k, "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["hits"].as_array().unwrap().len(), 3, "-k {k}: {out}");
    }
}

#[test]
fn check_reports_a_damaged_file_and_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("docs.jsonl");
    write_docs(&input, &docs(30));
    let idx = tmp.path().join("idx");
    let idx_s = idx.to_str().unwrap();
    ok(&["index", idx_s, "--input", input.to_str().unwrap()]);
    assert!(ok(&["check", idx_s]).contains("is sound"));
    let store = std::fs::read_dir(idx.join("text"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "store"))
        .unwrap();
    let mut bytes = std::fs::read(&store).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&store, bytes).unwrap();
    let out = optical(&["check", idx_s]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(store.to_str().unwrap()) && stdout.contains("checksum"),
        "{stdout}"
    );
}

#[test]
fn a_failed_first_index_run_leaves_no_index_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = tmp.path().join("idx");
    let idx_s = idx.to_str().unwrap();
    // A missing input file.
    let err = fails(&[
        "index",
        idx_s,
        "--input",
        tmp.path().join("nope.jsonl").to_str().unwrap(),
    ]);
    assert!(err.contains("nope.jsonl"), "{err}");
    assert!(!idx.exists(), "a missing input created {}", idx.display());
    // A bad first line (nothing is indexed from a file with a bad line).
    let bad = tmp.path().join("bad.jsonl");
    let mut lines = vec!["{not json".to_string()];
    lines.extend(docs(2));
    write_docs(&bad, &lines);
    let err = fails(&["index", idx_s, "--input", bad.to_str().unwrap()]);
    assert!(err.contains("bad.jsonl:1:"), "{err}");
    assert!(
        !idx.exists(),
        "a rejected file left an empty index in {}",
        idx.display()
    );
    // An existing empty directory is left as it was: empty, and still there.
    std::fs::create_dir(&idx).unwrap();
    fails(&["index", idx_s, "--input", bad.to_str().unwrap()]);
    assert!(
        idx.is_dir() && std::fs::read_dir(&idx).unwrap().next().is_none(),
        "{} is not empty",
        idx.display()
    );
    // The same file with --skip-invalid makes the index.
    ok(&[
        "index",
        idx_s,
        "--input",
        bad.to_str().unwrap(),
        "--skip-invalid",
    ]);
    // A later failing run leaves the existing index alone.
    fails(&[
        "index",
        idx_s,
        "--input",
        tmp.path().join("nope.jsonl").to_str().unwrap(),
    ]);
    assert!(ok(&["info", idx_s]).contains('2'));
}

#[test]
fn dim_on_an_existing_index_must_match() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("v.jsonl");
    let lines: Vec<String> = (0..3)
        .map(|i| serde_json::json!({"id": format!("v{i}"), "text": "river", "vector": [1.0, 0.0, 0.0, i as f32]}).to_string())
        .collect();
    write_docs(&input, &lines);
    let idx = tmp.path().join("idx");
    let (idx, input) = (idx.to_str().unwrap(), input.to_str().unwrap());
    ok(&["index", idx, "--input", input, "--dim", "4"]);
    ok(&["index", idx, "--input", input, "--dim", "4"]);
    ok(&["index", idx, "--input", input]);
    let err = fails(&["index", idx, "--input", input, "--dim", "8"]);
    assert!(
        err.contains("--dim 8") && err.contains("dimension 4"),
        "{err}"
    );
    let err = fails(&["index", idx, "--input", input, "--elem", "i8"]);
    assert!(err.contains("--elem i8") && err.contains("f32"), "{err}");
}

#[test]
fn search_without_query_text_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("docs.jsonl");
    write_docs(&input, &docs(3));
    let idx = tmp.path().join("idx");
    let idx = idx.to_str().unwrap();
    ok(&["index", idx, "--input", input.to_str().unwrap()]);
    for q in ["", "   ", "?!…", "--"] {
        let err = fails(&["search", idx, "--", q]);
        assert!(err.contains("no query text"), "{q:?}: {err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Smaller items of issue 13.

/// A line whose vector has the wrong dimension is a bad line like any other: reported as
/// file:line, and skipped with --skip-invalid instead of stopping the file.
#[test]
fn a_wrong_dimension_vector_is_a_bad_line_that_skip_invalid_skips() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = tmp.path().join("idx");
    let input = tmp.path().join("v.jsonl");
    let line = |id: &str, v: &[f32]| serde_json::json!({"id": id, "text": format!("river {id}"), "vector": v}).to_string();
    write_docs(&input, &[line("a", &[1.0, 0.0, 0.0]), line("short", &[1.0, 0.0]), line("b", &[0.0, 1.0, 0.0]), line("long", &[1.0; 4])]);
    let (idx_s, input_s) = (idx.to_str().unwrap(), input.to_str().unwrap());
    // Without --skip-invalid: both bad lines reported with their line, nothing indexed.
    let err = fails(&["index", idx_s, "--input", input_s, "--dim", "3"]);
    assert!(err.contains("v.jsonl:2:") && err.contains("dimension 2"), "{err}");
    assert!(err.contains("v.jsonl:4:") && err.contains("dimension 4"), "{err}");
    assert!(err.contains("2 bad line(s)") && err.contains("nothing was indexed"), "{err}");
    assert!(!idx.exists(), "a failed first run leaves no index");
    // With it: the good lines go in, the bad ones are reported.
    let out = optical(&["index", idx_s, "--input", input_s, "--dim", "3", "--skip-invalid"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("v.jsonl:2:") && stderr.contains("v.jsonl:4:"), "{stderr}");
    assert!(stdout.contains("indexed 2 documents") && stdout.contains("2 bad lines skipped"), "{stdout}");
}

/// Keys and text with newlines, tabs, NUL or an escape sequence are shown escaped in the
/// table: one line per hit and its snippet, nothing raw reaches the terminal.
#[test]
fn search_table_escapes_control_characters_in_keys_and_text() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = tmp.path().join("idx");
    let input = tmp.path().join("c.jsonl");
    let doc = serde_json::json!({"id": "a\tb\nc\u{0}d", "title": "t\u{0}\u{1b}[31mred", "text": "river\nbank\u{0}x \u{202e}abc", "lang": "en\tg"});
    write_docs(&input, &[doc.to_string()]);
    ok(&["index", idx.to_str().unwrap(), "--input", input.to_str().unwrap()]);
    let out = ok(&["search", idx.to_str().unwrap(), "river", "--mode", "bm25"]);
    for bad in ['\0', '\t', '\u{1b}', '\u{202e}'] {
        assert!(!out.contains(bad), "{bad:?} printed raw: {out:?}");
    }
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "one hit: its line and its snippet: {out:?}");
    assert!(lines[0].contains(r"a\tb\nc\0d") && lines[0].contains(r"[en\tg]"), "{out:?}");
    assert!(lines[0].contains(r"t\0\u{1b}[31mred"), "{out:?}");
    assert!(lines[1].contains(r"river bank\0x \u{202e}abc"), "{out:?}");
}

#[test]
fn index_prints_progress_lines_when_stderr_is_not_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("docs.jsonl");
    write_docs(&input, &docs(3_000));
    let idx = tmp.path().join("idx");
    let (idx, input) = (idx.to_str().unwrap(), input.to_str().unwrap());
    let run = |env: &[(&str, &str)]| {
        let _ = std::fs::remove_dir_all(idx);
        let out = optical_with_env(&["index", idx, "--input", input], env);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // Captured stderr is not a terminal: a line every millisecond of a 3,000-document run.
    let err = run(&[("OPTICAL_PROGRESS_SECS", "0.001")]);
    assert!(err.contains("documents indexed so far"), "no progress line in:\n{err}");
    // At the default interval (10 s) a run this short prints none.
    assert!(!run(&[]).contains("documents indexed so far"));
}

/// `--device cuda` on a build without the `cuda` feature: an error naming the device and the
/// feature to build with, never a panic (exit status 101).
#[cfg(not(feature = "cuda"))]
#[test]
fn device_cuda_without_the_cuda_feature_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    for args in [
        vec!["model", "info", model.to_str().unwrap(), "--device", "cuda"],
        vec!["model", "encode", model.to_str().unwrap(), "--device", "cuda:1"],
    ] {
        let out = optical(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "optical {args:?}: {stderr}");
        let device = if args[1] == "info" { "`cuda:0`" } else { "`cuda:1`" };
        assert!(
            stderr.contains(device) && stderr.contains("built without the cuda feature") && stderr.contains("--features cuda"),
            "optical {args:?}: {stderr}"
        );
    }
}

/// `--device cuda` on a `cuda` build where no CUDA driver or GPU is present: an error naming the
/// device and what is missing, never a panic. Run on a machine without a GPU with
/// `cargo test --release --features cuda --test cli_reliability device_cuda`; skips (loudly) where a
/// GPU is present.
#[cfg(feature = "cuda")]
#[test]
fn device_cuda_without_a_driver_is_a_clear_error() {
    if let Ok(n) = optical::encoder::cuda_device_count() {
        eprintln!("SKIPPED: this machine has a CUDA driver reporting {n} GPU(s)");
        return;
    }
    let why = optical::encoder::cuda_device_count().unwrap_err();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    let args = ["model", "info", model.to_str().unwrap(), "--device", "cuda"];
    let out = optical(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "optical {args:?}: {stderr}");
    assert!(
        stderr.contains("`cuda:0` is not available") && stderr.contains(&why) && !stderr.contains("panicked"),
        "optical {args:?}: {stderr}"
    );
    eprintln!("optical {args:?} -> {stderr}");
}
