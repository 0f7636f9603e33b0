//! Scan throughput: top-10 over one segment of 100 000 × 384 vectors (f32 and int8), in bytes
//! of vector data per second, beside a plain memory copy of the same number of bytes measured
//! in the same run. Each scan is measured with the default rayon pool (all cores) and with a
//! one-thread pool, which is the fair comparison with the single-threaded copy.
//!
//! `cargo bench -p optical-storage --bench scan`

#[path = "../tests/util/mod.rs"]
mod util;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use optical_storage::{ElemType, Segment, Tombstones};
use util::Rng;

const ROWS: usize = 100_000;
const DIM: usize = 384;

fn scan(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(7);
    let data: Vec<(u64, Vec<f32>)> = (0..ROWS as u64).map(|id| (id, rng.unit_vec(DIM))).collect();
    let query = rng.unit_vec(DIM);
    let tomb = Tombstones::new();
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let threads = rayon::current_num_threads();

    for elem in [ElemType::F32, ElemType::I8] {
        let path = dir.path().join(format!("bench-{elem}.seg"));
        util::write_segment(&path, DIM, elem, &data);
        let seg = Segment::open(&path).unwrap();
        // Bytes the kernel reads: the vector block, plus the scales for int8.
        let bytes = (ROWS * DIM * elem.size() + if elem == ElemType::I8 { ROWS * 4 } else { 0 }) as u64;
        let src = vec![1u8; bytes as usize];
        let mut dst = vec![0u8; bytes as usize];

        let mut g = c.benchmark_group(format!("scan_{elem}_100k_x_384"));
        g.throughput(Throughput::Bytes(bytes));
        g.sample_size(20);
        g.measurement_time(std::time::Duration::from_secs(4));
        g.bench_function(format!("top10_{threads}_threads"), |b| {
            b.iter(|| black_box(seg.top_k(black_box(&query), 10, &tomb).unwrap()))
        });
        g.bench_function("top10_1_thread", |b| {
            b.iter(|| one.install(|| black_box(seg.top_k(black_box(&query), 10, &tomb).unwrap())))
        });
        g.bench_function("memcpy_same_bytes", |b| {
            b.iter(|| {
                dst.copy_from_slice(black_box(&src));
                black_box(&mut dst);
            })
        });
        g.finish();
    }
}

criterion_group!(benches, scan);
criterion_main!(benches);
