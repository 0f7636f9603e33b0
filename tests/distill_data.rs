//! Bitext loading and the distill config: real files, gzip, errors that name file and line.
mod common;

use std::io::Write;
use std::path::Path;

use optical::distill::{read_bitext, read_bitexts};
use optical::distill::{DistillConfig, Objective};
use optical::encoder::Role;

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn reads_plain_and_gzipped_bitext_alike() {
    let dir = tempfile::tempdir().unwrap();
    let text = "Habari ya asubuhi\tGood morning\r\n\nAsante sana\tThank you very much\n";
    write(&dir.path().join("a.tsv"), text.as_bytes());
    // A gzip file without the .gz suffix is still recognised (by its magic bytes).
    write(&dir.path().join("b.tsv"), &gz(text.as_bytes()));
    let a = read_bitext(&dir.path().join("a.tsv")).unwrap();
    let b = read_bitext(&dir.path().join("b.tsv")).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].foreign, "Habari ya asubuhi");
    assert_eq!(a[0].english, "Good morning");
    assert_eq!(a[1].english, "Thank you very much");
    let both = read_bitexts(&[dir.path().join("a.tsv"), dir.path().join("b.tsv")]).unwrap();
    assert_eq!(both.len(), 4);
}

#[test]
fn errors_name_the_file_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 5] = [
        ("notab.tsv", b"a\tb\nno tab here\n", ":2"),
        ("three.tsv", b"a\tb\nc\td\n\nx\ty\tz\n", ":4"),
        ("empty-en.tsv", b"a\t \n", ":1"),
        ("utf8.tsv", b"a\tb\n\xff\xfe\tc\n", ":2"),
        ("nothing.tsv", b"\n\n", "no sentence pairs"),
    ];
    for (name, bytes, want) in cases {
        let path = dir.path().join(name);
        write(&path, bytes);
        let err = format!("{:#}", read_bitext(&path).unwrap_err());
        assert!(err.contains(name), "{name}: {err}");
        assert!(err.contains(want), "{name}: expected {want:?} in {err}");
    }
    // Same for a gzipped file.
    let path = dir.path().join("bad.tsv.gz");
    write(&path, &gz(b"a\tb\nc\td\nbroken\n"));
    let err = format!("{:#}", read_bitext(&path).unwrap_err());
    assert!(err.contains("bad.tsv.gz:3"), "{err}");
    let err = format!("{:#}", read_bitext(&dir.path().join("missing.tsv")).unwrap_err());
    assert!(err.contains("missing.tsv"), "{err}");
}

#[test]
fn reads_the_shared_swahili_bitext() {
    let Some(data) = common::shared_data() else { return };
    let dev = read_bitext(&data.join("bitext/swa.dev.tsv")).unwrap();
    assert_eq!(dev.len(), 500);
    let train = read_bitext(&data.join("bitext/swa.train.tsv.gz")).unwrap();
    assert!(train.len() > 30_000, "{}", train.len());
    assert!(train.iter().all(|p| !p.foreign.is_empty() && !p.english.is_empty()));
}

#[test]
fn example_config_parses_with_defaults_and_resolved_paths() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/distill-swa.toml");
    let cfg = DistillConfig::from_file(&path).unwrap();
    assert_eq!(cfg.side, Role::Query);
    assert_eq!(cfg.teacher_side(), Role::Passage);
    assert_eq!(cfg.objective, Objective::Ot);
    assert_eq!(cfg.sinkhorn.epsilon, 0.01);
    assert_eq!(cfg.sinkhorn.iterations, 50);
    assert!(cfg.freeze_word_embeddings);
    assert!(cfg.teacher.is_absolute() && !cfg.teacher.starts_with("~"));
    assert!(cfg.train[0].is_absolute());
    assert!(cfg.train[0].ends_with("swa.train.tsv.gz"));

    // Without `teacher_side` the teacher takes the student's side.
    let mse = DistillConfig::from_file(&path.with_file_name("distill-swa-mse.toml")).unwrap();
    assert_eq!(mse.objective, Objective::Mse);
    let mut same = mse.clone();
    same.teacher_side = None;
    assert_eq!(same.teacher_side(), Role::Query);
}

/// The student and sweep configs the scripts run: each parses and validates (an unknown or
/// misspelt key is an error), and each sweep config is the shipped recipe at the sweep budget with
/// only its named setting changed.
#[test]
fn student_and_sweep_configs_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let load = |p: &Path| DistillConfig::from_file(p).unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
    let shipped = load(&root.join("students/multilingual-otc.toml"));
    let mut names = Vec::new();
    for dir in ["students", "sweep"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let cfg = load(&path);
                names.push(format!("{dir}/{}", path.file_stem().unwrap().to_string_lossy()));
                if dir == "sweep" {
                    assert_eq!(cfg.max_steps, Some(200), "{}", path.display());
                    // The same files (the paths differ only in the config's directory).
                    let file_names = |v: &[std::path::PathBuf]| v.iter().map(|p| p.file_name().unwrap().to_owned()).collect::<Vec<_>>();
                    assert_eq!(file_names(&cfg.train), file_names(&shipped.train), "{}", path.display());
                    assert_eq!(file_names(&cfg.question_train), file_names(&shipped.question_train), "{}", path.display());
                    assert_eq!(cfg.seed, shipped.seed, "{}", path.display());
                }
            }
        }
    }
    for want in ["students/multilingual-otc", "students/multilingual-otc-1500", "students/hau-mse", "sweep/otc-200", "sweep/lr-1e-4"] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
    let base = load(&root.join("sweep/otc-200.toml"));
    let lr = load(&root.join("sweep/lr-1e-4.toml"));
    assert_eq!((base.learning_rate, lr.learning_rate), (shipped.learning_rate, 1e-4));
    assert_eq!(lr.sinkhorn.epsilon, base.sinkhorn.epsilon);
}

#[test]
fn config_errors_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let base = "teacher = \"t\"\nstudent = \"s\"\ntrain = [\"x.tsv\"]\noutput = \"o\"\n";
    let cases = [
        (format!("{base}learnin_rate = 1e-4\n"), "learnin_rate"),
        (format!("{base}objective = \"kl\"\n"), "objective"),
        (format!("{base}[sinkhorn]\nepsilon = 0.0\n"), "sinkhorn.epsilon"),
        ("teacher = \"t\"\nstudent = \"s\"\noutput = \"o\"\n".to_string(), "train"),
        (format!("{base}batch_size = 0\n"), "batch_size"),
    ];
    for (text, want) in cases {
        let path = dir.path().join("c.toml");
        std::fs::write(&path, &text).unwrap();
        let err = format!("{:#}", DistillConfig::from_file(&path).unwrap_err());
        assert!(err.contains(want), "expected {want:?} in: {err}");
        assert!(err.contains("c.toml"), "{err}");
    }
    let path = dir.path().join("c.toml");
    std::fs::write(&path, format!("{base}objective = \"ot+mse\"\nmse_weight = 0.5\n")).unwrap();
    let cfg = DistillConfig::from_file(&path).unwrap();
    assert_eq!(cfg.objective, Objective::OtMse);
    assert_eq!(cfg.output, dir.path().join("o"));
}

#[test]
fn question_bitext_is_taught_as_queries_and_dev_takes_one_file_or_a_list() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("multi.toml");
    let base = "teacher = \"t\"\nstudent = \"s\"\noutput = \"o\"\nteacher_side = \"document\"\n";
    std::fs::write(
        &path,
        format!(
            "{base}train = [\"swa.tsv\", \"hau.tsv\"]\nquestion_train = [\"afriqa-hau.tsv\"]\n\
             sampling_temperature = 5.0\ndev = [\"a.tsv\", \"b.tsv\"]\n"
        ),
    )
    .unwrap();
    let cfg = DistillConfig::from_file(&path).unwrap();
    let files = cfg.train_files();
    let names: Vec<(String, Role)> =
        files.iter().map(|(p, s)| (p.file_name().unwrap().to_string_lossy().into_owned(), *s)).collect();
    assert_eq!(
        names,
        vec![
            ("swa.tsv".to_string(), Role::Passage),
            ("hau.tsv".to_string(), Role::Passage),
            ("afriqa-hau.tsv".to_string(), Role::Query),
        ]
    );
    assert!(files.iter().all(|(p, _)| p.is_absolute()));
    assert_eq!(cfg.dev.len(), 2);
    assert_eq!(cfg.sampling_temperature, Some(5.0));

    // A single dev file is still accepted as a string; question bitext alone is enough to train.
    std::fs::write(&path, format!("{base}question_train = [\"q.tsv\"]\ndev = \"a.tsv\"\n")).unwrap();
    let cfg = DistillConfig::from_file(&path).unwrap();
    assert_eq!(cfg.dev, vec![dir.path().join("a.tsv")]);
    assert_eq!(cfg.train_files().len(), 1);

    // A non-positive temperature names the field.
    std::fs::write(&path, format!("{base}train = [\"x.tsv\"]\nsampling_temperature = 0.0\n")).unwrap();
    let err = format!("{:#}", DistillConfig::from_file(&path).unwrap_err());
    assert!(err.contains("sampling_temperature") && err.contains("multi.toml"), "{err}");
}
