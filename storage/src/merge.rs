//! Merging segments: rewrite the live rows of several segments into one, in ascending id order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::Path;

use crate::error::{Result, StorageError};
use crate::format::ElemType;
use crate::segment::Segment;
use crate::tombstones::Tombstones;
use crate::writer::{SegmentInfo, SegmentWriter};

/// Write a new segment at `out_path` holding every row of `inputs` whose id is not in
/// `tombstones`, in ascending id order, as `elem_type`:
///
/// - f32 → f32 and int8 → int8 copy rows unchanged (no re-quantization drift);
/// - f32 → int8 quantizes each row;
/// - int8 → f32 dequantizes (lossy: the original f32 values are gone).
///
/// All inputs must share one dimension. An id present in two inputs is an error (ids are
/// unique across an index). The output is written atomically; an empty result still yields a
/// valid, empty segment. The inputs are left untouched: deleting them (and pruning the merged
/// ids from the tombstones) is the caller's commit step.
pub fn merge_segments<S: AsRef<Segment>>(
    inputs: &[S],
    tombstones: &Tombstones,
    out_path: impl AsRef<Path>,
    elem_type: ElemType,
) -> Result<SegmentInfo> {
    let out_path = out_path.as_ref();
    let inputs: Vec<&Segment> = inputs.iter().map(AsRef::as_ref).collect();
    let Some(first) = inputs.first() else {
        return Err(StorageError::invalid(
            out_path,
            "merge needs at least one input segment (its dimension)",
        ));
    };
    let dim = first.dim();
    if let Some(bad) = inputs.iter().find(|s| s.dim() != dim) {
        return Err(StorageError::DimMismatch {
            path: bad.path().to_path_buf(),
            expected: dim,
            found: bad.dim(),
        });
    }
    let mut writer = SegmentWriter::create(out_path, dim, elem_type)?;
    // k-way merge on (id, input index, row).
    let mut heap: BinaryHeap<Reverse<(u64, usize, usize)>> = inputs
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.is_empty())
        .map(|(i, s)| Reverse((s.ids()[0], i, 0)))
        .collect();
    let mut buf = Vec::with_capacity(dim);
    while let Some(Reverse((id, si, row))) = heap.pop() {
        let seg = inputs[si];
        if row + 1 < seg.len() {
            heap.push(Reverse((seg.ids()[row + 1], si, row + 1)));
        }
        if tombstones.contains(id) {
            continue;
        }
        match (seg.elem_type(), elem_type) {
            (ElemType::I8, ElemType::I8) => {
                let (q, s) = seg.row_i8(row).expect("row in range");
                writer.push_i8(id, q, s)?;
            }
            (ElemType::F32, _) => writer.push(id, seg.row_f32(row).expect("row in range"))?,
            (ElemType::I8, ElemType::F32) => {
                let (q, s) = seg.row_i8(row).expect("row in range");
                buf.resize(dim, 0.0);
                crate::quant::dequantize_i8(q, s, &mut buf);
                writer.push(id, &buf)?;
            }
        }
    }
    writer.finish()
}
