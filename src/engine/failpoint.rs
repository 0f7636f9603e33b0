//! Test-only failure injection into the steps of a commit ([`Index::fail_next_commit_at`]).
//!
//! A commit is a sequence of steps (see the module docs of `engine`), and a full disk or an I/O
//! error can stop it at any of them. Tests arm one step; the next commit fails there as that
//! error would, and the tests prove that the last commit stays intact and that the next writer
//! continues correctly. Unarmed, a step costs one relaxed atomic load.
//!
//! [`Index::fail_next_commit_at`]: super::Index::fail_next_commit_at

use std::sync::atomic::{AtomicU8, Ordering};

use anyhow::{Result, bail};

/// The steps of a commit, in the order they run (for the test hook
/// [`Index::fail_next_commit_at`](super::Index::fail_next_commit_at)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CommitStep {
    /// The commit's new vector segment (and its int8 companion) has been written.
    VectorSegment = 1,
    /// The merge policy's merged segment has been written (commits that merge).
    VectorMerge,
    /// The new tombstone file has been written (commits that delete or merge).
    Tombstones,
    /// The fsync of `vectors/` that makes the new files' names durable.
    SyncVectors,
    /// tantivy's `prepare_commit` has run (its segments are flushed, nothing is committed).
    TextPrepare,
    /// tantivy's commit, which writes `meta.json` with the payload: the commit point.
    TextCommit,
    /// The checksum verification of the text segments the commit made live (after the commit
    /// point).
    VerifyText,
    /// Opening the new commit: its searcher and vector files.
    OpenCommit,
    /// The update of the sled key map.
    KeyMap,
    /// Deleting the files the new commit no longer names. Best effort by design: a failure
    /// here leaves orphans that the next writable open deletes, and the commit succeeds.
    RemoveObsolete,
}

impl CommitStep {
    /// Every step, in commit order.
    pub const ALL: [CommitStep; 10] = [
        CommitStep::VectorSegment,
        CommitStep::VectorMerge,
        CommitStep::Tombstones,
        CommitStep::SyncVectors,
        CommitStep::TextPrepare,
        CommitStep::TextCommit,
        CommitStep::VerifyText,
        CommitStep::OpenCommit,
        CommitStep::KeyMap,
        CommitStep::RemoveObsolete,
    ];

    /// Whether the commit has reached disk (its `meta.json` is written) when this step fails.
    pub fn after_commit_point(self) -> bool {
        self as u8 > CommitStep::TextCommit as u8
    }
}

impl std::fmt::Display for CommitStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CommitStep::VectorSegment => "writing the vector segment",
            CommitStep::VectorMerge => "writing the merged vector segment",
            CommitStep::Tombstones => "writing the tombstones",
            CommitStep::SyncVectors => "syncing the vectors directory",
            CommitStep::TextPrepare => "preparing the tantivy commit",
            CommitStep::TextCommit => "committing to tantivy",
            CommitStep::VerifyText => "verifying the new text segments",
            CommitStep::OpenCommit => "opening the new commit",
            CommitStep::KeyMap => "updating the sled key map (the commit itself succeeded)",
            CommitStep::RemoveObsolete => "removing obsolete vector files",
        })
    }
}

/// The armed step of an index (0: none).
#[derive(Default)]
pub struct FailPoint(AtomicU8);

impl FailPoint {
    /// Makes the next run of `step` fail.
    pub fn arm(&self, step: CommitStep) {
        self.0.store(step as u8, Ordering::SeqCst);
    }

    /// Whether `step` is armed; disarms it (the failure is injected once).
    pub fn fires(&self, step: CommitStep) -> bool {
        self.0.load(Ordering::Relaxed) == step as u8
            && self.0.compare_exchange(step as u8, 0, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// An error when `step` is armed (then disarmed), as an I/O error at that step would give.
    pub fn check(&self, step: CommitStep) -> Result<()> {
        if self.fires(step) {
            bail!("{step}: injected failure");
        }
        Ok(())
    }
}
