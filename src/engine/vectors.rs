//! The vector side of one commit: the live segment files named by the commit payload, opened
//! and memory-mapped, and the tombstone set; plus the file operations of a commit (write a
//! segment, write tombstones, merge, delete orphans).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use optical_storage::{ElemType, Segment, SegmentWriter, Tombstones, get_vector, merge_segments};

use super::failpoint::{CommitStep, FailPoint};
use super::meta::{CommitMeta, VectorElem};

/// Extension of vector segment files.
pub const SEGMENT_EXT: &str = "ovs";
/// Extension of tombstone files.
pub const TOMBSTONE_EXT: &str = "tomb";

/// Merge policy: when a commit leaves more than this many segments, the smallest are merged.
pub const MAX_SEGMENTS: usize = 8;
/// How many of the smallest segments one merge combines.
pub const MERGE_WIDTH: usize = 4;

/// Name of the segment written by commit `generation` (`part` tells a merge output apart).
pub fn segment_name(generation: u64, part: &str) -> String {
    format!("seg-{generation:012}{part}.{SEGMENT_EXT}")
}

/// Name of the int8 companion of segment `name` (indexes with [`VectorElem::F32I8`]): same
/// rows and ids, int8 elements. It lives and dies with its segment and is not named in the
/// commit payload separately.
pub fn companion_name(name: &str) -> String {
    let stem = name.strip_suffix(&format!(".{SEGMENT_EXT}")).unwrap_or(name);
    format!("{stem}.i8.{SEGMENT_EXT}")
}

/// Name of the tombstone file written by commit `generation`.
pub fn tombstone_name(generation: u64) -> String {
    format!("tomb-{generation:012}.{TOMBSTONE_EXT}")
}

/// The opened vectors of one commit. Cheap to clone (segments are shared). Read through
/// [`Snapshot`](super::Snapshot)'s methods; the fields are the engine's own.
#[derive(Clone, Default)]
pub(crate) struct VectorSet {
    /// File names of `segments`, in payload order.
    pub(crate) names: Vec<String>,
    /// Live segments, in payload order.
    pub(crate) segments: Vec<Arc<Segment>>,
    /// The int8 companions of `segments`, in the same order ([`VectorElem::F32I8`] only; empty
    /// otherwise).
    pub(crate) int8: Vec<Arc<Segment>>,
    /// Deleted ids that still have rows in live segments.
    pub(crate) tombstones: Arc<Tombstones>,
    /// File the tombstones came from.
    pub(crate) tombstone_file: Option<String>,
    /// Number of live rows (rows whose id is not tombstoned).
    pub(crate) live: u64,
}

impl VectorSet {
    /// Opens the files named by `meta` under `dir`, reusing already-open segments of `previous`
    /// (segment files are immutable, so a name identifies its content).
    pub(crate) fn open(dir: &Path, meta: &CommitMeta, previous: Option<&VectorSet>) -> Result<VectorSet> {
        let Some(dim) = meta.config.dim else {
            if !meta.segments.is_empty() || meta.tombstones.is_some() {
                bail!("text-only index names vector files in its commit payload");
            }
            return Ok(VectorSet::default());
        };
        let reuse: HashMap<&str, &Arc<Segment>> = previous
            .map(|p| p.names.iter().map(String::as_str).zip(&p.segments).collect())
            .unwrap_or_default();
        let reuse_int8: HashMap<String, &Arc<Segment>> = previous
            .map(|p| p.names.iter().zip(&p.int8).map(|(n, s)| (companion_name(n), s)).collect())
            .unwrap_or_default();
        let dual = meta.config.elem.has_int8_companion();
        let mut segments = Vec::with_capacity(meta.segments.len());
        let mut int8 = Vec::new();
        for name in &meta.segments {
            if dual {
                let cname = companion_name(name);
                let comp = match reuse_int8.get(&cname) {
                    Some(seg) => Arc::clone(seg),
                    None => {
                        let path = dir.join(&cname);
                        let seg = Segment::open(&path)
                            .with_context(|| format!("opening int8 companion segment {}", path.display()))?;
                        if seg.dim() != dim || seg.elem_type() != ElemType::I8 {
                            bail!(
                                "int8 companion segment {} has dimension {} and element type {:?}, expected {dim} and I8",
                                path.display(),
                                seg.dim(),
                                seg.elem_type()
                            );
                        }
                        Arc::new(seg)
                    }
                };
                int8.push(comp);
            }
            let seg = match reuse.get(name.as_str()) {
                Some(seg) => Arc::clone(seg),
                None => {
                    let path = dir.join(name);
                    let seg = Segment::open(&path)
                        .with_context(|| format!("opening vector segment {}", path.display()))?;
                    if seg.dim() != dim {
                        bail!("vector segment {} has dimension {}, the index has {dim}", path.display(), seg.dim());
                    }
                    if seg.elem_type() != meta.config.elem.storage() {
                        bail!(
                            "vector segment {} has element type {:?}, the index has {}",
                            path.display(),
                            seg.elem_type(),
                            meta.config.elem
                        );
                    }
                    Arc::new(seg)
                }
            };
            if let Some(comp) = int8.last()
                && comp.ids() != seg.ids()
            {
                bail!("int8 companion of vector segment {name} holds different ids than the segment");
            }
            segments.push(seg);
        }
        let tombstones = match (&meta.tombstones, previous) {
            (None, _) => Arc::new(Tombstones::new()),
            (Some(name), Some(prev)) if prev.tombstone_file.as_deref() == Some(name.as_str()) => {
                Arc::clone(&prev.tombstones)
            }
            (Some(name), _) => {
                let path = dir.join(name);
                Arc::new(Tombstones::read(&path).with_context(|| format!("reading tombstones {}", path.display()))?)
            }
        };
        let live = segments.iter().map(|s| live_rows(s, &tombstones)).sum();
        Ok(VectorSet {
            names: meta.segments.clone(),
            segments,
            int8,
            tombstones,
            tombstone_file: meta.tombstones.clone(),
            live,
        })
    }

    /// The vector of a live id, if any.
    pub(crate) fn get(&self, id: u64) -> Option<Vec<f32>> {
        get_vector(&self.segments, id, &self.tombstones)
    }

    /// Whether `id` has a live (not tombstoned) row.
    pub(crate) fn has_live(&self, id: u64) -> bool {
        !self.tombstones.contains(id) && self.segments.iter().any(|s| s.contains(id))
    }
}

fn live_rows(seg: &Segment, tombstones: &Tombstones) -> u64 {
    if tombstones.is_empty() {
        seg.len() as u64
    } else {
        seg.ids().iter().filter(|id| !tombstones.contains(**id)).count() as u64
    }
}

/// Writes one new segment from rows in ascending id order.
pub(crate) fn write_segment(path: &Path, dim: usize, elem: VectorElem, rows: &BTreeMap<u64, Vec<f32>>) -> Result<()> {
    let mut w = SegmentWriter::create(path, dim, elem.storage())
        .with_context(|| format!("creating vector segment {}", path.display()))?;
    for (&id, v) in rows {
        w.push(id, v).with_context(|| format!("writing id {id} to {}", path.display()))?;
    }
    w.finish().with_context(|| format!("finishing vector segment {}", path.display()))?;
    if elem.has_int8_companion() {
        let name = path.file_name().and_then(|n| n.to_str()).context("segment path has no file name")?;
        let cpath = path.with_file_name(companion_name(name));
        write_segment(&cpath, dim, VectorElem::I8, rows)?;
    }
    Ok(())
}

/// The vector files a commit is about to name, computed from the previous commit plus this
/// commit's changes; everything it lists has been written and fsynced.
pub(crate) struct PlannedVectors {
    /// Segment names of the new commit.
    pub segments: Vec<String>,
    /// Tombstone file of the new commit.
    pub tombstones: Option<String>,
    /// Files of the previous commit that the new one no longer names (delete after the commit).
    pub obsolete: Vec<String>,
}

/// Writes this commit's vector files: a segment for `new_rows`, the tombstone set extended by
/// `deleted`, and (merge policy) one merged segment when there are too many. Returns the file
/// lists for the commit payload. Nothing the previous commit names is modified.
pub(crate) fn write_commit_files(
    dir: &Path,
    previous: &VectorSet,
    generation: u64,
    dim: usize,
    elem: VectorElem,
    new_rows: &BTreeMap<u64, Vec<f32>>,
    deleted: &[u64],
    fail: &FailPoint,
) -> Result<PlannedVectors> {
    let mut segments: Vec<(String, Option<Arc<Segment>>, u64)> =
        previous.names.iter().zip(&previous.segments).map(|(n, s)| (n.clone(), Some(Arc::clone(s)), s.len() as u64)).collect();
    let mut tombstones: Tombstones = (*previous.tombstones).clone();
    let mut tombstones_changed = false;
    for &id in deleted {
        tombstones_changed |= tombstones.insert(id);
    }
    if !new_rows.is_empty() {
        let name = segment_name(generation, "");
        write_segment(&dir.join(&name), dim, elem, new_rows)?;
        fail.check(CommitStep::VectorSegment)?;
        segments.push((name, None, new_rows.len() as u64));
    }
    let mut obsolete = Vec::new();
    if segments.len() > MAX_SEGMENTS {
        // Merge the MERGE_WIDTH smallest segments (among the previous ones, which are open).
        let mut order: Vec<usize> = (0..segments.len()).filter(|&i| segments[i].1.is_some()).collect();
        order.sort_by_key(|&i| segments[i].2);
        let pick: HashSet<usize> = order.into_iter().take(MERGE_WIDTH).collect();
        if pick.len() >= 2 {
            let inputs: Vec<Arc<Segment>> =
                pick.iter().map(|&i| Arc::clone(segments[i].1.as_ref().expect("picked open segments"))).collect();
            let name = segment_name(generation, "-merged");
            let path = dir.join(&name);
            let wrote = merge(&inputs, &tombstones, &path, elem)?;
            fail.check(CommitStep::VectorMerge)?;
            let merged_ids: Vec<u64> = pick.iter().flat_map(|&i| segments[i].1.as_ref().unwrap().ids().to_vec()).collect();
            let mut kept = Vec::new();
            for (i, s) in segments.into_iter().enumerate() {
                if pick.contains(&i) {
                    if elem.has_int8_companion() {
                        obsolete.push(companion_name(&s.0));
                    }
                    obsolete.push(s.0);
                } else {
                    kept.push(s);
                }
            }
            // The merged segment dropped the tombstoned rows of its inputs: their tombstones go.
            for id in merged_ids {
                tombstones_changed |= tombstones.remove(id);
            }
            if wrote {
                kept.insert(0, (name, None, 0));
            }
            segments = kept;
        }
    }
    let tombstone_file = if tombstones_changed {
        if let Some(old) = &previous.tombstone_file {
            obsolete.push(old.clone());
        }
        if tombstones.is_empty() {
            None
        } else {
            let name = tombstone_name(generation);
            let path = dir.join(&name);
            tombstones.write(&path).with_context(|| format!("writing tombstones {}", path.display()))?;
            fail.check(CommitStep::Tombstones)?;
            Some(name)
        }
    } else {
        previous.tombstone_file.clone()
    };
    fail.check(CommitStep::SyncVectors)?;
    sync_dir(dir)?;
    Ok(PlannedVectors { segments: segments.into_iter().map(|s| s.0).collect(), tombstones: tombstone_file, obsolete })
}

/// Writes the live rows of `inputs` into one new segment (and its int8 companion when the index
/// keeps them) with the storage crate's merge. Returns false, and writes nothing, when no row is
/// live: a commit then simply drops the inputs.
fn merge(inputs: &[Arc<Segment>], tombstones: &Tombstones, out: &Path, elem: VectorElem) -> Result<bool> {
    if !inputs.iter().any(|s| s.ids().iter().any(|&id| !tombstones.contains(id))) {
        return Ok(false);
    }
    merge_segments(inputs, tombstones, out, elem.storage())
        .with_context(|| format!("merging vector segments into {}", out.display()))?;
    if elem.has_int8_companion() {
        // The companion quantizes the merged f32 rows: quantization is deterministic, so this
        // gives the same bytes as the input companions held.
        let name = out.file_name().and_then(|n| n.to_str()).context("merged segment path has no file name")?;
        let companion = out.with_file_name(companion_name(name));
        merge_segments(inputs, tombstones, &companion, ElemType::I8)
            .with_context(|| format!("merging int8 companion segments into {}", companion.display()))?;
    }
    Ok(true)
}

/// fsyncs a directory so that renames and deletions in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing directory {}", dir.display()))
}

/// Deletes every file in `dir` that the commit does not name (leftovers of a commit that never
/// completed, temporary files, files of older commits). Only a writer may call this.
pub(crate) fn remove_orphans(dir: &Path, meta: &CommitMeta) -> Result<Vec<PathBuf>> {
    let companions: Vec<String> = if meta.config.elem.has_int8_companion() {
        meta.segments.iter().map(|s| companion_name(s)).collect()
    } else {
        Vec::new()
    };
    let named: HashSet<&str> =
        meta.segments.iter().chain(meta.tombstones.iter()).chain(&companions).map(|s| s.as_str()).collect();
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name();
        let keep = name.to_str().is_some_and(|n| named.contains(n));
        if !keep && entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
            let path = entry.path();
            std::fs::remove_file(&path).with_context(|| format!("removing orphan {}", path.display()))?;
            removed.push(path);
        }
    }
    if !removed.is_empty() {
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// Deletes the named files (best effort: a leftover is an orphan the next open removes).
pub(crate) fn remove_files(dir: &Path, names: &[String]) {
    for n in names {
        let _ = std::fs::remove_file(dir.join(n));
    }
}
