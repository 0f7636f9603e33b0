//! Shipped students: a distilled student stored as the tensors training changed (fp16
//! safetensors) plus a manifest, and assembled back into a full model directory on top of the
//! base model it was trained from.
//!
//! A student of multilingual-e5-small trains ≈ 21.5M of its 117.5M parameters (the word-embedding
//! table stays frozen), so the shipped file is ≈ 43 MB instead of 470 MB. The manifest pins the
//! base model (weights fingerprint), the assembled result (fingerprint of the `model.safetensors`
//! that [`assemble`] writes, which is byte-for-byte deterministic) and the shipped file (sha256),
//! so a wrong base, a corrupt file or a changed assembly is an error naming the file at fault.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use half::f16;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::distill::write_atomic;

use super::{CONFIG_FILE, META_FILE, OpticalMeta, TOKENIZER_FILE, WEIGHTS_FILE};

/// The shipped tensors of a student (fp16), in its shipped directory.
pub const DELTA_FILE: &str = "weights.safetensors";
/// The manifest of a shipped student, in its shipped directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The manifest's copy in an assembled model directory (provenance).
pub const ASSEMBLED_MANIFEST_FILE: &str = "student.json";
/// Manifest format version.
pub const MANIFEST_FORMAT: u32 = 1;

/// The base model a student was trained from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaseModel {
    /// Model name (as in its `optical.json`).
    pub name: String,
    /// Fingerprint of its `model.safetensors` (the weights the delta applies to).
    pub fingerprint: String,
}

/// One data file a student was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFile {
    /// File name (the path it had at training time, relative to the shared data folder).
    pub name: String,
    /// sha256 of the file's bytes (hex).
    pub sha256: String,
}

/// `manifest.json` of a shipped student.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudentManifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// Student name (also the assembled directory's model name).
    pub name: String,
    /// Languages the student was trained for (ISO 639-3), for `--query-lang`.
    pub languages: Vec<String>,
    /// The base model the delta applies to.
    pub base: BaseModel,
    /// Fingerprint of the assembled `model.safetensors`.
    pub fingerprint: String,
    /// sha256 of [`DELTA_FILE`] (hex).
    pub weights_sha256: String,
    /// Names of the tensors the delta replaces.
    pub tensors: Vec<String>,
    /// Parameters in those tensors.
    pub parameters: usize,
    /// `optical.json` of the assembled directory (prefixes, length, embedding space).
    pub meta: OpticalMeta,
    /// The training config, as the run recorded it (`distill.toml`).
    pub training: serde_json::Value,
    /// Every training and dev file, with its sha256.
    pub data: Vec<DataFile>,
    /// Who encodes English queries when this student is the default: `"student"`, or
    /// `"teacher"` when the student costs English retrieval more than 0.01 nDCG@10 (measured).
    pub english_queries: EnglishRoute,
    /// Measurements (dev metrics of the run, the evaluation figures it was chosen on, and the
    /// score on the committed sample that a test reproduces).
    pub metrics: serde_json::Value,
    /// The shipped weights are `base + α · (trained − base)` with this α (weight-space
    /// interpolation toward the base model, chosen on dev); absent when α = 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpolation: Option<f32>,
    /// Translation tables for the BM25 leg (PSQ) shipped beside the weights, as
    /// `psq/<lang>.tsv` with their sha256; assembly checks and copies them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub translation_tables: Vec<DataFile>,
}

/// Folder of a shipped or assembled student that holds its translation tables.
pub const TABLES_DIR: &str = "psq";

/// Which encoder takes English queries when a student is the default query encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EnglishRoute {
    /// The student encodes English queries too.
    #[default]
    Student,
    /// English queries go to the base model (the teacher's space, unchanged).
    Teacher,
}

impl StudentManifest {
    /// Reads a manifest, naming the file in every error.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let m: Self = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        ensure!(
            m.format == MANIFEST_FORMAT,
            "{}: manifest format {} is not supported (this build reads format {MANIFEST_FORMAT})",
            path.display(),
            m.format
        );
        Ok(m)
    }

    /// Writes the manifest (pretty JSON, atomically).
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, (serde_json::to_string_pretty(self)? + "\n").as_bytes())
    }
}

/// The last two components of a path (`bitext/swa.train.tsv.gz`): how a manifest names a file
/// without recording the training machine's directories.
pub fn portable_path(p: &Path) -> String {
    let n = p.components().count();
    p.components().skip(n.saturating_sub(2)).collect::<PathBuf>().display().to_string()
}

/// sha256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex(&h.finalize()))
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Fingerprint of weights bytes: the first 16 hex digits of their sha256, as
/// [`super::weights_fingerprint`] computes it for a file.
fn fingerprint_of(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))[..16].to_string()
}


fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn parse<'a>(bytes: &'a [u8], path: &Path) -> Result<SafeTensors<'a>> {
    SafeTensors::deserialize(bytes).map_err(|e| anyhow::anyhow!("{}: not a valid safetensors file ({e})", path.display()))
}

fn f32_values(view: &TensorView<'_>, name: &str, path: &Path) -> Result<Vec<f32>> {
    ensure!(view.dtype() == Dtype::F32, "{}: tensor {name} is {:?}, expected F32", path.display(), view.dtype());
    Ok(view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// The tensors of `student` that differ from `base`, as `base + alpha · (student − base)`
/// rounded to fp16: `(name, shape, values)`. `alpha = 1` ships the student itself. Both files
/// must hold the same tensor names and shapes (a student is a trained copy).
pub fn changed_tensors(base: &Path, student: &Path, alpha: f32) -> Result<Vec<(String, Vec<usize>, Vec<f16>)>> {
    let (bb, sb) = (read(base)?, read(student)?);
    let (bt, st) = (parse(&bb, base)?, parse(&sb, student)?);
    let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let s = st.tensor(&name).map_err(|e| anyhow::anyhow!("{}: {name}: {e}", student.display()))?;
        let b = bt
            .tensor(&name)
            .map_err(|_| anyhow::anyhow!("{} has tensor {name}, the base {} has not", student.display(), base.display()))?;
        ensure!(
            s.shape() == b.shape(),
            "tensor {name}: shape {:?} in {} but {:?} in the base {}",
            s.shape(),
            student.display(),
            b.shape(),
            base.display()
        );
        if s.data() == b.data() {
            continue;
        }
        let trained = f32_values(&s, &name, student)?;
        let values = if alpha == 1.0 {
            trained.into_iter().map(f16::from_f32).collect()
        } else {
            let b = f32_values(&b, &name, base)?;
            trained.iter().zip(&b).map(|(t, b)| f16::from_f32(b + alpha * (t - b))).collect()
        };
        out.push((name, s.shape().to_vec(), values));
    }
    Ok(out)
}

/// Serialises fp16 tensors as safetensors bytes.
fn serialize_f16(tensors: &[(String, Vec<usize>, Vec<f16>)]) -> Result<Vec<u8>> {
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| Ok((name.clone(), TensorView::new(Dtype::F16, shape.clone(), b)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(safetensors::serialize(views, None)?)
}

/// The full `model.safetensors` bytes: every tensor of `base_bytes`, with those of the delta
/// replaced by their fp16 values widened to f32. Deterministic, so its fingerprint is stable.
fn assemble_bytes(base_bytes: &[u8], base: &Path, delta_bytes: &[u8], delta: &Path) -> Result<(Vec<u8>, usize)> {
    let bt = parse(base_bytes, base)?;
    let dt = parse(delta_bytes, delta)?;
    let mut widened: HashMap<String, Vec<u8>> = HashMap::new();
    for name in dt.names() {
        let d = dt.tensor(name).map_err(|e| anyhow::anyhow!("{}: {name}: {e}", delta.display()))?;
        let b = bt
            .tensor(name)
            .map_err(|_| anyhow::anyhow!("{}: tensor {name} is not in the base model {}", delta.display(), base.display()))?;
        ensure!(d.dtype() == Dtype::F16, "{}: tensor {name} is {:?}, expected F16", delta.display(), d.dtype());
        ensure!(
            d.shape() == b.shape(),
            "{}: tensor {name} has shape {:?}, the base model {} has {:?}",
            delta.display(),
            d.shape(),
            base.display(),
            b.shape()
        );
        let bytes = d
            .data()
            .chunks_exact(2)
            .flat_map(|h| f16::from_le_bytes([h[0], h[1]]).to_f32().to_le_bytes())
            .collect();
        widened.insert(name.to_string(), bytes);
    }
    let mut names: Vec<String> = bt.names().into_iter().map(str::to_string).collect();
    names.sort();
    let views = names
        .iter()
        .map(|name| {
            let b = bt.tensor(name).map_err(|e| anyhow::anyhow!("{}: {name}: {e}", base.display()))?;
            let data: &[u8] = widened.get(name).map(|v| v.as_slice()).unwrap_or(b.data());
            Ok((name.clone(), TensorView::new(b.dtype(), b.shape().to_vec(), data)?))
        })
        .collect::<Result<Vec<_>>>()?;
    // The base file's metadata (e.g. `format: pt`) carries over unchanged.
    let (_, header) = SafeTensors::read_metadata(base_bytes).map_err(|e| anyhow::anyhow!("{}: {e}", base.display()))?;
    let metadata = header.metadata().clone();
    Ok((safetensors::serialize(views, metadata)?, widened.len()))
}

/// What [`export`] needs beyond the two model directories.
pub struct ExportInfo {
    /// Student name.
    pub name: String,
    /// Languages it serves.
    pub languages: Vec<String>,
    /// The training config.
    pub training: serde_json::Value,
    /// Training and dev files (hashed into the manifest).
    pub data: Vec<PathBuf>,
    /// Who encodes English queries.
    pub english_queries: EnglishRoute,
    /// Measurements to record.
    pub metrics: serde_json::Value,
    /// Weight-space interpolation toward the base: ship `base + α · (trained − base)`
    /// (1 ships the trained weights).
    pub interpolation: f32,
    /// Translation tables (`optical psq build` files named `<lang>.tsv`) to ship beside it.
    pub translation_tables: Vec<PathBuf>,
}

/// Writes `out/weights.safetensors` (the tensors of `student_dir` that differ from `base_dir`,
/// fp16) and `out/manifest.json`. Returns the manifest. The recorded fingerprint is the one the
/// assembled model has, so a model directory made by [`assemble`] can be checked against it.
pub fn export(student_dir: &Path, base_dir: &Path, out: &Path, info: ExportInfo) -> Result<StudentManifest> {
    let base_w = base_dir.join(WEIGHTS_FILE);
    ensure!(
        info.interpolation > 0.0 && info.interpolation <= 1.0,
        "interpolation must be in (0, 1], got {}",
        info.interpolation
    );
    let tensors = changed_tensors(&base_w, &student_dir.join(WEIGHTS_FILE), info.interpolation)?;
    ensure!(!tensors.is_empty(), "{} has the same weights as {}: nothing to ship", student_dir.display(), base_dir.display());
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let delta_bytes = serialize_f16(&tensors)?;
    let delta_path = out.join(DELTA_FILE);
    write_atomic(&delta_path, &delta_bytes)?;
    let base_bytes = read(&base_w)?;
    let (assembled, _) = assemble_bytes(&base_bytes, &base_w, &delta_bytes, &delta_path)?;
    let base_meta = OpticalMeta::load(&base_dir.join(META_FILE))?;
    let mut meta = OpticalMeta::load(&student_dir.join(META_FILE))?;
    meta.name = info.name.clone();
    // The manifest's `fingerprint` names the assembled weights; the student's own record names
    // its fp32 weights, which are not shipped.
    meta.weights_fingerprint.clear();
    let mut data = Vec::new();
    for p in &info.data {
        let name = portable_path(p);
        data.push(DataFile { name, sha256: sha256_file(p)? });
    }
    let mut translation_tables = Vec::new();
    for table in &info.translation_tables {
        // Parsing checks the table's own checksum before it is shipped.
        crate::translate::TranslationTable::read(table)?;
        let file = table.file_name().with_context(|| format!("{} has no file name", table.display()))?;
        let name = Path::new(TABLES_DIR).join(file);
        std::fs::create_dir_all(out.join(TABLES_DIR)).with_context(|| format!("creating {}", out.join(TABLES_DIR).display()))?;
        std::fs::copy(table, out.join(&name)).with_context(|| format!("copying {} into {}", table.display(), out.display()))?;
        translation_tables.push(DataFile { name: name.display().to_string(), sha256: sha256_file(table)? });
    }
    let manifest = StudentManifest {
        format: MANIFEST_FORMAT,
        name: info.name,
        languages: info.languages,
        base: BaseModel { name: base_meta.name, fingerprint: fingerprint_of(&base_bytes) },
        fingerprint: fingerprint_of(&assembled),
        weights_sha256: hex(&Sha256::digest(&delta_bytes)),
        parameters: tensors.iter().map(|(_, _, v)| v.len()).sum(),
        tensors: tensors.into_iter().map(|(n, _, _)| n).collect(),
        meta,
        training: info.training,
        data,
        english_queries: info.english_queries,
        metrics: info.metrics,
        interpolation: (info.interpolation != 1.0).then_some(info.interpolation),
        translation_tables,
    };
    manifest.save(&out.join(MANIFEST_FILE))?;
    Ok(manifest)
}

/// Assembles the shipped student in `shipped` (manifest + fp16 weights) on top of the base model
/// directory `base_dir` into the model directory `out` (config.json and tokenizer.json from the
/// base, model.safetensors assembled, optical.json from the manifest, the manifest as
/// `student.json`). Checks the shipped file's sha256, the base's fingerprint and the result's
/// fingerprint; every error names the file at fault. Writes to `out.tmp` and renames, so `out`
/// is either complete or absent.
pub fn assemble(shipped: &Path, base_dir: &Path, out: &Path) -> Result<StudentManifest> {
    let manifest_path = shipped.join(MANIFEST_FILE);
    if !manifest_path.exists() {
        bail!("shipped student {}: {} is missing", shipped.display(), manifest_path.display());
    }
    let manifest = StudentManifest::load(&manifest_path)?;
    let delta_path = shipped.join(DELTA_FILE);
    if !delta_path.exists() {
        bail!("shipped student {}: {} is missing", shipped.display(), delta_path.display());
    }
    let delta_bytes = read(&delta_path)?;
    let got = hex(&Sha256::digest(&delta_bytes));
    if got != manifest.weights_sha256 {
        bail!(
            "{} is corrupt or was changed: its sha256 is {got}, {} records {}",
            delta_path.display(),
            manifest_path.display(),
            manifest.weights_sha256
        );
    }
    let base_w = base_dir.join(WEIGHTS_FILE);
    let base_bytes = read(&base_w)?;
    let base_fp = fingerprint_of(&base_bytes);
    if base_fp != manifest.base.fingerprint {
        bail!(
            "{} is not the base model of {}: its fingerprint is {base_fp}, the student was trained from {} ({})",
            base_w.display(),
            shipped.display(),
            manifest.base.name,
            manifest.base.fingerprint
        );
    }
    let (assembled, replaced) = assemble_bytes(&base_bytes, &base_w, &delta_bytes, &delta_path)?;
    ensure!(
        replaced == manifest.tensors.len(),
        "{}: holds {replaced} tensors, {} lists {}",
        delta_path.display(),
        manifest_path.display(),
        manifest.tensors.len()
    );
    let fp = fingerprint_of(&assembled);
    if fp != manifest.fingerprint {
        bail!(
            "assembling {} gave fingerprint {fp}, {} records {}",
            shipped.display(),
            manifest_path.display(),
            manifest.fingerprint
        );
    }
    let tmp = out.with_extension("tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    std::fs::write(tmp.join(WEIGHTS_FILE), &assembled).with_context(|| format!("writing {}", tmp.join(WEIGHTS_FILE).display()))?;
    for f in [CONFIG_FILE, TOKENIZER_FILE] {
        std::fs::copy(base_dir.join(f), tmp.join(f))
            .with_context(|| format!("copying {} to {}", base_dir.join(f).display(), tmp.display()))?;
    }
    for table in &manifest.translation_tables {
        let src = shipped.join(&table.name);
        if !src.exists() {
            bail!("shipped student {}: {} is missing", shipped.display(), src.display());
        }
        let got = sha256_file(&src)?;
        if got != table.sha256 {
            bail!(
                "{} is corrupt or was changed: its sha256 is {got}, {} records {}",
                src.display(),
                manifest_path.display(),
                table.sha256
            );
        }
        let dst = tmp.join(&table.name);
        std::fs::create_dir_all(dst.parent().expect("a table path has a folder"))
            .with_context(|| format!("creating {}", tmp.join(TABLES_DIR).display()))?;
        std::fs::copy(&src, &dst).with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
    }
    let mut meta = manifest.meta.clone();
    meta.weights_fingerprint = manifest.fingerprint.clone();
    meta.save(&tmp.join(META_FILE))?;
    manifest.save(&tmp.join(ASSEMBLED_MANIFEST_FILE))?;
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("removing the old {}", out.display()))?;
    }
    std::fs::rename(&tmp, out).with_context(|| format!("renaming {} to {}", tmp.display(), out.display()))?;
    Ok(manifest)
}

/// Whether `dir` is a model directory assembled from `shipped` that is still intact: its
/// recorded manifest equals the shipped one and its weights have the recorded fingerprint.
pub fn is_assembled(shipped: &Path, dir: &Path) -> bool {
    let (Ok(a), Ok(b)) = (StudentManifest::load(&shipped.join(MANIFEST_FILE)), StudentManifest::load(&dir.join(ASSEMBLED_MANIFEST_FILE))) else {
        return false;
    };
    a == b && super::weights_fingerprint(&dir.join(WEIGHTS_FILE)).is_ok_and(|fp| fp == a.fingerprint)
}
