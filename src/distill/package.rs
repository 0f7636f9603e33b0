//! Packaging a finished run for shipping: the tensors that differ from the base model (fp16) and
//! a manifest recording the base, the training config (paths made portable), the data files,
//! the run's measurements, and the assembled student's score on a sample collection, which a
//! test reproduces from the shipped files.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::config::DistillConfig;
use crate::encoder::delta::{self, EnglishRoute, ExportInfo, StudentManifest};
use crate::encoder::{Encoder, Role, default_device};

/// What to ship, besides the run itself.
#[derive(Debug, Clone)]
pub struct PackageOptions {
    /// Student name.
    pub name: String,
    /// Languages it serves (ISO 639-3).
    pub languages: Vec<String>,
    /// Where English queries go.
    pub english_queries: EnglishRoute,
    /// Measurements to record beside the run's `summary.json` (as `metrics.evaluation`).
    pub evaluation: Option<PathBuf>,
    /// BEIR collection scored with the assembled student (queries) against the base model
    /// (documents), recorded as `metrics.sample`.
    pub sample: PathBuf,
    /// Ship `base + α · (trained − base)`.
    pub interpolation: f32,
    /// Translation table files to ship with the student.
    pub translation_tables: Vec<PathBuf>,
}

/// Packages the finished run in `student` (trained from `base`) into `out`; returns the
/// manifest written there.
pub fn package_student(student: &Path, base: &Path, out: &Path, opts: PackageOptions) -> Result<StudentManifest> {
    let config_path = student.join("distill.toml");
    let cfg = DistillConfig::from_file(&config_path)
        .with_context(|| format!("{} is not a finished `optical distill` output", student.display()))?;
    let mut data: Vec<PathBuf> = cfg.train_files().into_iter().map(|(p, _)| p).collect();
    data.extend(cfg.dev.iter().cloned());
    let mut metrics = serde_json::Map::new();
    metrics.insert("run".into(), read_json(&student.join("summary.json"))?);
    if let Some(m) = &opts.evaluation {
        metrics.insert("evaluation".into(), read_json(m)?);
    }
    let info = ExportInfo {
        name: opts.name,
        languages: opts.languages,
        training: portable_paths(serde_json::to_value(&cfg)?),
        data,
        english_queries: opts.english_queries,
        metrics: serde_json::Value::Object(metrics),
        interpolation: opts.interpolation,
        translation_tables: opts.translation_tables,
    };
    let mut m = delta::export(student, base, out, info)?;
    // Score the product (the assembled fp16 student), not the f32 training output.
    let scratch = std::env::temp_dir().join(format!("optical-export-{}", std::process::id()));
    delta::assemble(out, base, &scratch)?;
    let device = default_device();
    let assembled = Encoder::load(&scratch, &device)?;
    let base_encoder = Encoder::load(base, &device)?;
    let (sample, _) = crate::eval::dense_eval(&opts.sample, None, &assembled, &base_encoder, Role::Passage, 100)?;
    std::fs::remove_dir_all(&scratch).with_context(|| format!("removing {}", scratch.display()))?;
    m.metrics["sample"] = serde_json::to_value(&sample)?;
    m.save(&out.join(delta::MANIFEST_FILE))?;
    Ok(m)
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The config with every path cut to its last two components ([`delta::portable_path`]), so a
/// manifest does not carry the machine's directories.
fn portable_paths(mut config: serde_json::Value) -> serde_json::Value {
    fn cut(v: &mut serde_json::Value) {
        if let Some(s) = v.as_str() {
            *v = serde_json::Value::String(delta::portable_path(Path::new(s)));
        }
    }
    for key in ["teacher", "student", "output", "teacher_cache_dir"] {
        if let Some(v) = config.get_mut(key) {
            cut(v);
        }
    }
    for key in ["train", "question_train", "dev"] {
        if let Some(serde_json::Value::Array(items)) = config.get_mut(key) {
            items.iter_mut().for_each(cut);
        }
    }
    config
}
