//! Immutable memory-mapped vector segments for Optical (see `storage/FORMAT.md`).
//!
//! - [`SegmentWriter`] streams rows (ids strictly ascending) into a new segment file, written
//!   atomically (tmp + fsync + rename + directory fsync).
//! - [`Segment::open`] maps and validates a file (magic, version, sizes, alignment, crc32)
//!   and exposes its rows without copying.
//! - [`Tombstones`] mark deleted ids until [`merge_segments`] rewrites the live rows.
//! - [`top_k_segments`] / [`Segment::top_k`] scan with f32 or int8 dot-product kernels in
//!   parallel; [`score_ids`] rescores candidate ids exactly.
//! - The functions over several segments take `&[S]` for any `S: AsRef<Segment>`: owned
//!   segments, references, or `Arc<Segment>` as a caller sharing segments between readers holds.
//!
//! No ML, no text search: this crate knows vectors, ids and files.

mod error;
mod format;
mod fsutil;
mod kernels;
mod merge;
mod quant;
mod search;
mod segment;
mod tombstones;
mod writer;

pub use error::{Result, StorageError};
pub use format::{ALIGN, ElemType, MAX_DIM, SEGMENT_VERSION};
pub use kernels::{Hit, dot_f32, dot_i8, sort_hits};
pub use merge::merge_segments;
pub use quant::{dequantize_i8, quantize_i8};
pub use search::{get_vector, score_ids, top_k_segments};
pub use segment::Segment;
pub use tombstones::{TOMB_VERSION, Tombstones};
pub use writer::{SegmentInfo, SegmentWriter};
