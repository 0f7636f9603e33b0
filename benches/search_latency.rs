//! Search latency on a 100k-document index with 384-dimensional vectors (f32 + int8
//! companions): p50/p99 of every stage (BM25, dense int8 scan, exact rerank, fusion) and end
//! to end, without and with query encoding (multilingual-e5-small in the precision search runs
//! in, when prepared), plus
//! criterion means of the end-to-end searches.
//!
//! ```text
//! cargo bench --bench search_latency
//! ```
//!
//! The index is built once into `$OPTICAL_CACHE/bench-indexes/` (random unit vectors; text made
//! of English sentences from the shared bitext/AfriQA data, or synthetic Zipfian words when that
//! data is absent; random token codes of the shipped e5 codebook, one per word and a third, as
//! an index made with e5 stores them). The default late-interaction stage is timed on its own
//! (it runs only with a query encoder, which the no-encoding rows have not): the top 30 of the
//! hybrid + PSQ searches, their stored codes read and decoded, MaxSim against 16 query rows; with
//! e5 prepared, the whole default cross-lingual path is timed too, and its query encoding as two
//! encoder calls against the one the searcher makes. Set `OPTICAL_BENCH_DOCS` for
//! another size, `OPTICAL_BENCH_ITERS` for more timed iterations.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use optical::engine::{Document, EncoderRecord, Index, IndexConfig, VectorElem};
use optical::encoder::codebook::Codebook;
use optical::encoder::{Encoder, EncoderOptions};
use optical::search::late::{self, Candidate, PassageRows, QueryRows, TokenRows};
use optical::search::{Mode, Rerank, SearchRequest, Searcher, StageTimings};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DIM: usize = 384;
const COMPLETE: &str = "optical-bench-index-complete";

fn cache_dir() -> PathBuf {
    std::env::var_os("OPTICAL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/optical")
        })
}

fn shared_data() -> Option<PathBuf> {
    let dir = std::env::var_os("OPTICAL_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    dir.join("eval").is_dir().then_some(dir)
}

fn unit(rng: &mut StdRng) -> Vec<f32> {
    // Gaussian-ish components (sum of uniforms) make directions uniform enough for a benchmark.
    let v: Vec<f32> = (0..DIM)
        .map(|_| (0..3).map(|_| rng.random_range(-1.0f32..1.0)).sum())
        .collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

/// English sentences: the English side of the shared bitext dev sets and the sentences of the
/// AfriQA passages; synthetic Zipfian "sentences" when the shared data is absent.
fn sentences(rng: &mut StdRng) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(data) = shared_data() {
        if let Ok(entries) = std::fs::read_dir(data.join("bitext")) {
            for e in entries.flatten() {
                let p = e.path();
                if p.to_string_lossy().ends_with(".dev.tsv")
                    && let Ok(s) = std::fs::read_to_string(&p)
                {
                    out.extend(
                        s.lines()
                            .filter_map(|l| l.split('\t').nth(1))
                            .map(str::to_string),
                    );
                }
            }
        }
        let corpus = data.join("eval/afriqa-hau/corpus.jsonl.gz");
        if let Ok(s) = optical::corpus::read_to_string_maybe_gz(&corpus) {
            for line in s.lines() {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(line)
                    && let Some(t) = v["text"].as_str()
                {
                    out.extend(t.split(". ").filter(|s| s.len() > 20).map(str::to_string));
                }
            }
        }
    }
    if out.len() < 1000 {
        eprintln!("shared data not found: using synthetic Zipfian text");
        let vocab: Vec<String> = (0..20_000).map(|i| format!("w{i:x}")).collect();
        for _ in 0..20_000 {
            let n = rng.random_range(6..20);
            let words: Vec<&str> = (0..n)
                .map(|_| {
                    // Zipf-like: rank ~ 1 / uniform.
                    let r = (1.0 / rng.random_range(0.00005f64..1.0)) as usize;
                    vocab[r.min(vocab.len() - 1)].as_str()
                })
                .collect();
            out.push(words.join(" "));
        }
    }
    out
}

/// The token codebook shipped for multilingual-e5-small (its codes are what an index made with
/// e5 stores).
fn shipped_codebook() -> Codebook {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("codebooks/multilingual-e5-small.safetensors");
    Codebook::load(&path).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Random token codes for a passage of `tokens` tokens: valid centroid ids, random residuals.
fn random_codes(rng: &mut StdRng, book: &Codebook, tokens: usize) -> Vec<u8> {
    let mut codes = Vec::with_capacity(tokens * book.bytes_per_token());
    for _ in 0..tokens {
        codes.extend_from_slice(&(rng.random_range(0..book.centroids()) as u16).to_le_bytes());
        codes.extend((2..book.bytes_per_token()).map(|_| rng.random::<u8>()));
    }
    codes
}

/// Random unit rows standing for a query's token states.
fn random_rows(rng: &mut StdRng, rows: usize) -> TokenRows {
    TokenRows::new((0..rows).flat_map(|_| unit(rng)).collect(), DIM)
}

/// Builds (once) the benchmark index; returns its directory and the sentences used.
fn bench_index(n: usize) -> (PathBuf, Vec<String>) {
    let mut rng = StdRng::seed_from_u64(2024);
    let sents = sentences(&mut rng);
    let dir = cache_dir()
        .join("bench-indexes")
        .join(format!("search-{n}x{DIM}-codes-v2"));
    if dir.join(COMPLETE).is_file() {
        return (dir, sents);
    }
    let tmp = dir.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    eprintln!(
        "building the benchmark index {} ({n} documents, once)",
        dir.display()
    );
    let t0 = Instant::now();
    let book = shipped_codebook();
    // Codes are an encoder's token states: the index records the encoder the codebook was
    // fitted on (e5 (q4), whose embedding space is its weights' fingerprint), as one made with
    // e5 does, so that e5 also encodes its queries.
    let e5 = EncoderRecord {
        name: "multilingual-e5-small-q4".into(),
        dim: DIM,
        fingerprint: book.encoder_fingerprint().into(),
        embedding_space: book.encoder_fingerprint().into(),
    };
    let index = Index::create_with_codebook(
        &tmp,
        IndexConfig {
            dim: Some(DIM),
            elem: VectorElem::F32I8,
            encoder: Some(e5),
            token_codebook: None,
        },
        &book,
    )
    .unwrap();
    let mut w = index.writer().unwrap();
    let per_commit = n.div_ceil(4);
    for i in 0..n {
        let k = rng.random_range(2..5);
        let body: Vec<&str> = (0..k)
            .map(|_| sents[rng.random_range(0..sents.len())].as_str())
            .collect();
        let title = sents[rng.random_range(0..sents.len())]
            .split(' ')
            .take(4)
            .collect::<Vec<_>>()
            .join(" ");
        let body = body.join(". ");
        // e5 reads at most 128 tokens, two of them special (not stored).
        let words = body.split_whitespace().count() + title.split_whitespace().count();
        let codes = random_codes(&mut rng, &book, (words * 4 / 3).clamp(1, 126));
        w.add(
            Document::new(format!("doc{i}"), body)
                .with_title(title)
                .with_lang("eng")
                .with_vector(unit(&mut rng))
                .with_token_codes(codes),
        )
        .unwrap();
        if (i + 1) % per_commit == 0 {
            w.commit().unwrap();
        }
    }
    w.commit().unwrap();
    drop(w);
    drop(index);
    std::fs::write(tmp.join(COMPLETE), b"").unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).unwrap();
    eprintln!("built in {:.0} s", t0.elapsed().as_secs_f64());
    (dir, sents)
}

/// Queries: 3–8 consecutive words of a random sentence, and a vector near a random document's.
fn queries(index: &Index, sents: &[String], n: usize) -> Vec<(String, Vec<f32>)> {
    let mut rng = StdRng::seed_from_u64(77);
    let snap = index.snapshot();
    let docs = snap.num_docs();
    (0..n)
        .map(|_| {
            let s: Vec<&str> = sents[rng.random_range(0..sents.len())]
                .split_whitespace()
                .collect();
            let len = rng.random_range(3..=8).min(s.len());
            let start = rng.random_range(0..=s.len() - len);
            let text = s[start..start + len].join(" ");
            let target = snap
                .vector(rng.random_range(0..docs))
                .unwrap_or_else(|| unit(&mut rng));
            let noise = unit(&mut rng);
            let v: Vec<f32> = target
                .iter()
                .zip(&noise)
                .map(|(a, b)| a + 0.8 * b)
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            (text, v.into_iter().map(|x| x / norm).collect())
        })
        .collect()
}

fn pct(mut v: Vec<Duration>, p: f64) -> f64 {
    v.sort_unstable();
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1].as_secs_f64() * 1e3
}

/// Runs `iters` searches and prints p50/p99 of each stage.
fn report(label: &str, searcher: &Searcher, reqs: &[SearchRequest], iters: usize) {
    let mut t: Vec<StageTimings> = Vec::with_capacity(iters);
    for i in 0..iters {
        let res = searcher.search(&reqs[i % reqs.len()]).unwrap();
        black_box(&res.hits);
        t.push(res.timings);
    }
    let col = |f: fn(&StageTimings) -> Duration| {
        let v: Vec<Duration> = t.iter().map(f).collect();
        format!("{:>7.3} / {:>7.3}", pct(v.clone(), 50.0), pct(v, 99.0))
    };
    println!(
        "{label:<28} {iters:>5}  {}  {}  {}  {}  {}  {}  {}",
        col(|s| s.encode),
        col(|s| s.bm25),
        col(|s| s.dense_scan),
        col(|s| s.rerank),
        col(|s| s.fusion),
        col(|s| s.late_interaction),
        col(|s| s.total)
    );
}

/// The default late-interaction stage after `reqs`' searches (`maxsim:30:0.4` on the stored
/// codes), timed alone as the searcher times it: reading the top 30 stored documents, decoding
/// their codes, MaxSim of the query's rows and of its rendering's (16 random rows each), the two
/// mixes. Prints its p50/p99, the reading's, and that of search + stage;
/// then, as a reference from the same iterations, reading the 30 documents one search per id.
fn stage_report(searcher: &Searcher, reqs: &[SearchRequest], iters: usize) {
    let snap = searcher.snapshot().clone();
    let book = snap.codebook().expect("the bench index stores token codes").clone();
    let Rerank::MaxSim { depth, weight } = Rerank::default();
    let mut rng = StdRng::seed_from_u64(5);
    let (mut stage, mut total) = (Vec::with_capacity(iters), Vec::with_capacity(iters));
    let (mut read, mut read_per_id) = (Vec::with_capacity(iters), Vec::with_capacity(iters));
    for i in 0..iters {
        let req = reqs[i % reqs.len()].clone().with_k(depth);
        let res = searcher.search(&req).unwrap();
        let ranking: Vec<(u64, f32)> = res.hits.iter().map(|h| (h.id, h.score)).collect();
        let query = QueryRows { written: random_rows(&mut rng, 16), rendered: Some((random_rows(&mut rng, 16), late::DEFAULT_RENDERING_WEIGHT)) };
        let ids: Vec<u64> = ranking.iter().take(depth).map(|h| h.0).collect();
        // The reference: the candidates read one search per id (the stage before session 22),
        // before the stage on even iterations and after it on odd ones, so that neither side
        // always finds the doc store's blocks cached by the other.
        let per_id = || {
            let t0 = Instant::now();
            black_box(ids.iter().map(|&id| snap.document(id).unwrap().expect("a ranked document is stored")).collect::<Vec<_>>());
            t0.elapsed()
        };
        if i % 2 == 0 {
            read_per_id.push(per_id());
        }
        // The stage as the searcher runs it: the candidates read in one batch (all through the
        // `id` postings here; a search also has its BM25 hits' addresses), then decoded, MaxSim,
        // the mix.
        let t0 = Instant::now();
        let candidates: Vec<Candidate> = snap.documents(&ids, &[]).unwrap().into_iter().map(Candidate::from_stored).collect();
        read.push(t0.elapsed());
        let rows = PassageRows { codebook: Some(&book), encoder: None };
        black_box(late::rerank_top(&query, rows, &ranking, &candidates, weight).unwrap());
        stage.push(t0.elapsed());
        total.push(res.timings.total + t0.elapsed());
        if i % 2 == 1 {
            read_per_id.push(per_id());
        }
    }
    println!(
        "{:<28} {iters:>5}  {:>17}  {:>7.3} / {:>7.3} (the stage, of which reading the documents {:.3} / {:.3})  {:>7.3} / {:>7.3} (search + stage)",
        format!("  + default stage ({depth})"),
        "",
        pct(stage.clone(), 50.0),
        pct(stage, 99.0),
        pct(read.clone(), 50.0),
        pct(read, 99.0),
        pct(total.clone(), 50.0),
        pct(total, 99.0)
    );
    println!("{:<28} {iters:>5}  {:>17}  {:>7.3} / {:>7.3}", "  reading them one by one", "", pct(read_per_id.clone(), 50.0), pct(read_per_id, 99.0));
}

/// The query encoding a cross-lingual query needs when the stage runs — its vector from the
/// glossed text, its token states from the text as written — timed as two encoder calls (the
/// path before session 22), as one call ([`late::query_vector_and_rows`]), and as one call that
/// also encodes the query's English rendering (what `Searcher::search` does since session 27),
/// alternating per query so that all three see the same machine.
fn stage_encoding_report(searcher: &Searcher, encoder: &Encoder, reqs: &[SearchRequest], iters: usize) {
    let (mut two, mut one, mut rendered) = (Vec::with_capacity(iters), Vec::with_capacity(iters), Vec::with_capacity(iters));
    for i in 0..iters {
        let req = &reqs[i % reqs.len()];
        let glossed = searcher.dense_query_text(&req.query, req.query_lang.as_deref());
        let t0 = Instant::now();
        black_box(encoder.encode_queries(&[glossed.as_ref()]).unwrap());
        black_box(late::query_rows(encoder, &req.query, None).unwrap());
        two.push(t0.elapsed());
        let t0 = Instant::now();
        black_box(late::query_vector_and_rows(encoder, &glossed, &req.query, None).unwrap());
        one.push(t0.elapsed());
        let rendering = searcher.query_rendering(&req.query, req.query_lang.as_deref());
        let t0 = Instant::now();
        black_box(late::query_vector_and_rows(encoder, &glossed, &req.query, rendering.as_ref()).unwrap());
        rendered.push(t0.elapsed());
    }
    for (label, v) in [("  encoding, two calls", two), ("  encoding, one call", one), ("  one call + rendering", rendered)] {
        println!("{label:<28} {iters:>5}  {:>7.3} / {:>7.3}", pct(v.clone(), 50.0), pct(v, 99.0));
    }
}

fn main() {
    // `cargo bench` passes `--bench`. Without it (`cargo test --all-targets`) this is a smoke run
    // on a small index, so the test suite does not build the 100k-document one.
    let measuring = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("OPTICAL_BENCH_DOCS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if measuring { 100_000 } else { 2_000 });
    let iters: usize = std::env::var("OPTICAL_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if measuring { 500 } else { 20 });
    let (dir, sents) = bench_index(n);
    let index = Index::open_read_only(&dir).unwrap();
    let snap = index.snapshot();
    println!(
        "index: {} documents, {} vector segments (f32 + int8 companions), dim {DIM}; rayon threads {}",
        snap.num_docs(),
        snap.num_vector_segments(),
        rayon::current_num_threads()
    );
    let searcher = Searcher::new(snap);
    let qs = queries(&index, &sents, 200);
    let req = |mode: Mode, (text, v): &(String, Vec<f32>)| {
        SearchRequest::new(text.clone())
            .with_mode(mode)
            .with_k(10)
            .with_query_vector(v.clone())
    };
    let hybrid: Vec<SearchRequest> = qs.iter().map(|q| req(Mode::Hybrid, q)).collect();
    let dense: Vec<SearchRequest> = qs.iter().map(|q| req(Mode::Dense, q)).collect();
    let bm25: Vec<SearchRequest> = qs.iter().map(|q| req(Mode::Bm25, q)).collect();
    // Warm the page cache and the thread pool.
    for r in hybrid.iter().take(20) {
        searcher.search(r).unwrap();
    }
    println!(
        "\nper-stage latency, ms p50 / p99 (k = 10; hybrid: BM25 top-100 ∪ int8 top-100 rescored on f32, default fusion; dense: int8 top-40 rescored on f32)"
    );
    println!(
        "{:<28} {:>5}  {:^17}  {:^17}  {:^17}  {:^17}  {:^17}  {:^17}  {:^17}",
        "search", "iters", "encode", "bm25", "dense scan", "rerank", "fusion", "late interaction", "end to end"
    );
    report("hybrid, no encoding", &searcher, &hybrid, iters);
    report("dense, no encoding", &searcher, &dense, iters);
    report("bm25", &searcher, &bm25, iters);
    // Hybrid with a translated BM25 leg (PSQ): queries of six Hausa words drawn from the shipped
    // Hausa table (each word expands to up to five weighted English terms).
    let table_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("students/multilingual/psq/hau.tsv");
    let mut psq_with_table = None;
    match optical::translate::TranslationTable::read(&table_path) {
        Ok(table) => {
            let table = Arc::new(table);
            let words: Vec<String> = table.words().map(str::to_string).collect();
            let psq_searcher = searcher.clone().with_translation_table(Arc::clone(&table));
            let mut rng = StdRng::seed_from_u64(11);
            let psq: Vec<SearchRequest> = qs
                .iter()
                .map(|(_, v)| {
                    let text: Vec<&str> = (0..6).map(|_| words[rng.random_range(0..words.len())].as_str()).collect();
                    req(Mode::Hybrid, &(text.join(" "), v.clone())).with_query_lang("hau")
                })
                .collect();
            report("hybrid + PSQ, no encoding", &psq_searcher, &psq, iters);
            stage_report(&psq_searcher, &psq, iters);
            psq_with_table = Some((table, psq.clone()));
            // The same with two of the six words spelled otherwise, as real questions have them:
            // a table word with a letter added (found through the table's closest spellings) and
            // an English word with `ya` added, as names are written in Kinyarwanda (in no table,
            // so the English terms spelled like it are looked up in the index).
            let english: Vec<&str> = sents
                .iter()
                .flat_map(|s| s.split_whitespace())
                .filter(|w| w.len() >= 5 && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
                .collect();
            if english.is_empty() {
                eprintln!("no word of 5 letters or more in the index: no respelled PSQ row");
            } else {
                let spelled: Vec<SearchRequest> = qs
                    .iter()
                    .map(|(_, v)| {
                        let mut text: Vec<String> = (0..4).map(|_| words[rng.random_range(0..words.len())].clone()).collect();
                        text.push(format!("{}x", words[rng.random_range(0..words.len())]));
                        text.push(format!("{}ya", english[rng.random_range(0..english.len())]));
                        req(Mode::Hybrid, &(text.join(" "), v.clone())).with_query_lang("hau")
                    })
                    .collect();
                report("hybrid + PSQ, 2 respelled", &psq_searcher, &spelled, iters);
            }
        }
        Err(e) => eprintln!("no PSQ row: {e:#}"),
    }

    // Reference measured in the same run: an exhaustive exact f32 scan (top-10) of the same
    // vectors — what the dense stage would cost without the int8 companions. The engine has no
    // such path, so the bench scans the committed f32 segment files with the storage crate.
    let snap = searcher.snapshot().clone();
    let f32_segments: Vec<optical_storage::Segment> = snap
        .meta()
        .segments
        .iter()
        .map(|name| optical_storage::Segment::open(dir.join("vectors").join(name)).unwrap())
        .collect();
    let none = optical_storage::Tombstones::new();
    let mut f32_times = Vec::with_capacity(iters);
    for i in 0..iters {
        let t0 = Instant::now();
        black_box(optical_storage::top_k_segments(&f32_segments, &qs[i % qs.len()].1, 10, &none).unwrap());
        f32_times.push(t0.elapsed());
    }
    println!(
        "{:<28} {iters:>5}  {:>37}  {:>7.3} / {:>7.3}",
        "reference: f32 exact scan",
        "",
        pct(f32_times.clone(), 50.0),
        pct(f32_times, 99.0)
    );
    // The dense stage at depth 100 (top-100 from an int8 top-400).
    let dense_100: Vec<SearchRequest> =
        qs.iter().map(|q| req(Mode::Dense, q).with_k(100)).collect();
    report("dense top-100", &searcher, &dense_100, iters);
    // Where BM25 time goes at depth 100: the candidates alone (tantivy's top-100 with ids) vs.
    // with keys read.
    let bm25_100: Vec<SearchRequest> = qs.iter().map(|q| req(Mode::Bm25, q).with_k(100)).collect();
    report("bm25 top-100 (with keys)", &searcher, &bm25_100, iters);
    let mut raw = Vec::with_capacity(iters);
    for i in 0..iters {
        let t0 = Instant::now();
        black_box(
            snap.bm25_candidates(&qs[i % qs.len()].0, 100, None, Default::default())
                .unwrap(),
        );
        raw.push(t0.elapsed());
    }
    println!(
        "{:<28} {iters:>5}  {:>18}  {:>7.3} / {:>7.3}",
        "bm25 top-100 (ids only)",
        "",
        pct(raw.clone(), 50.0),
        pct(raw, 99.0)
    );
    println!(
        "load average while measuring: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );

    // With query encoding (the index's vectors are random, so only the timing is meaningful).
    let model = cache_dir().join("models/multilingual-e5-small");
    let encoder = if model.join("model.safetensors").is_file() {
        // The precision search runs in (int8 where the CPU has a fast int8 kernel).
        let enc = Encoder::load_with(&model, &optical::encoder::default_device(), &EncoderOptions::for_search()).unwrap();
        println!("query encoder: multilingual-e5-small, {}", enc.precision());
        // The bench index records e5 as its encoder.
        Some(Arc::new(enc))
    } else {
        println!(
            "multilingual-e5-small not prepared ({}): skipping query encoding",
            model.display()
        );
        None
    };
    let enc_searcher = encoder.as_ref().map(|e| searcher.clone().with_encoder(Arc::clone(e)).unwrap());
    if let Some(s) = &enc_searcher {
        let with_enc: Vec<SearchRequest> = qs
            .iter()
            .map(|(t, _)| {
                SearchRequest::new(t.clone())
                    .with_mode(Mode::Hybrid)
                    .with_k(10)
            })
            .collect();
        for r in with_enc.iter().take(5) {
            s.search(r).unwrap();
        }
        report(
            "hybrid, e5 query encoding",
            s,
            &with_enc,
            (iters / 5).max(20),
        );
        // The default path of a cross-lingual query: PSQ, e5 encoding the query's vector and,
        // for the late-interaction stage, its token states (counted as encoding).
        if let Some((table, psq)) = &psq_with_table {
            let s = s.clone().with_translation_table(Arc::clone(table));
            let psq: Vec<SearchRequest> = psq.iter().map(|r| SearchRequest { query_vector: None, ..r.clone() }).collect();
            report("hybrid + PSQ + stage, e5", &s, &psq, (iters / 5).max(20));
            if let Some(e) = &encoder {
                stage_encoding_report(&s, e, &psq, (iters / 5).max(20));
            }
        }
    }

    let mut c = Criterion::default()
        .sample_size(50)
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut g = c.benchmark_group(format!("search_{n}x{DIM}"));
    let mut i = 0;
    g.bench_function("hybrid_no_encoding", |b| {
        b.iter(|| {
            i += 1;
            searcher.search(&hybrid[i % hybrid.len()]).unwrap()
        })
    });
    g.bench_function("dense_no_encoding", |b| {
        b.iter(|| {
            i += 1;
            searcher.search(&dense[i % dense.len()]).unwrap()
        })
    });
    g.bench_function("bm25", |b| {
        b.iter(|| {
            i += 1;
            searcher.search(&bm25[i % bm25.len()]).unwrap()
        })
    });
    if let Some(s) = &enc_searcher {
        g.sample_size(10);
        g.bench_function("hybrid_with_e5_encoding", |b| {
            b.iter(|| {
                i += 1;
                s.search(&SearchRequest::new(qs[i % qs.len()].0.clone()).with_k(10))
                    .unwrap()
            })
        });
    }
    g.finish();
    c.final_summary();
}
