//! Fuzz (property) tests of every reader of bytes from disk or from users outside the storage
//! crate (whose segment and tombstone readers are fuzzed in `storage/tests/storage_fuzz.rs`):
//! the commit payload, key-map records, `optical.json`, `config.json`, tokenizer and weights
//! files, the q4 importer, the distillation TOML and metrics log, JSONL/BEIR corpora and
//! queries, bitext, TREC runs and qrels, BEIR qrels, translation tables, results tables, student
//! manifests, CLI specs and query text.
//!
//! Each reader gets arbitrary bytes and mutations of a valid input (see
//! `storage/tests/util/mutate.rs`) and must return `Ok` or `Err`, never panic; where a writer
//! exists, what it writes reads back the same. Every property is named `fuzz_<target>_…`, and
//! `scripts/fuzz.sh` runs each target with many more cases (`$OPTICAL_FUZZ_CASES`). The case
//! counts here keep the whole file to a few seconds of CI time.

mod common;
#[path = "../storage/tests/util/mutate.rs"]
mod mutate;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use mutate::{apply, bytes, cases, mutations};
use optical::corpus::{CorpusReader, CorpusItem};
use optical::distill::{BitextPair, read_bitext};
use optical::distill::DistillConfig;
use optical::distill::{DevMetrics, Record, plot, read_records};
use optical::encoder::delta::StudentManifest;
use optical::encoder::q4::{Q4Model, import_e5_q4};
use optical::encoder::{BertConfig, BertModel, OpticalMeta, TextTokenizer, check_safetensors, load_weights};
use optical::engine::keymap::{KeyMapMeta, decode_id};
use optical::engine::{CommitMeta, Document, FORMAT_VERSION, Index, IndexConfig, VectorElem, decode_record, encode_record};
use optical::eval::{Metric, Qrels, ResultRow, ResultsTable, Run, read_queries};
use optical::search::{Fusion, Mode, SearchRequest, Searcher};
use optical::translate::TranslationTable;
use proptest::prelude::*;

/// A scratch directory for the whole test binary (each property writes its own file names).
fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

/// Writes `bytes` to a file of the scratch directory unique to this thread and `name`.
fn file_with(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch().join(format!("{:?}-{name}", std::thread::current().id()).replace(['(', ')'], ""));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Arbitrary bytes or a mutation of `valid`: the two inputs every reader is fuzzed with.
fn input(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![1 => bytes(300), 3 => mutations(4).prop_map(move |m| apply(&valid, &m))]
}

/// Plain words, for round trips through formats that cannot hold whitespace.
fn word() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_éß-]{1,10}"
}

// ---- the index: commit payload and key-map records --------------------------------------------

fn valid_meta() -> CommitMeta {
    CommitMeta {
        format: FORMAT_VERSION,
        generation: 7,
        next_id: 120,
        segments: vec!["seg-000000000003-merged.ovs".into(), "seg-000000000007.ovs".into()],
        tombstones: Some("tomb-000000000007.tomb".into()),
        config: IndexConfig {
            dim: Some(384),
            elem: VectorElem::F32I8,
            encoder: Some(optical::engine::EncoderRecord {
                name: "e5".into(),
                dim: 384,
                fingerprint: "8520eedb7ea5147f".into(),
                embedding_space: "8520eedb7ea5147f".into(),
            }),
            token_codebook: Some("5d41402abc4b2a76b9719d911017c592".into()),
        },
    }
}

fn arb_meta() -> impl Strategy<Value = CommitMeta> {
    let name = "[a-z0-9-]{1,20}\\.(ovs|tomb)";
    (
        any::<u64>(),
        any::<u64>(),
        prop::collection::vec(name, 0..4),
        prop::option::of(name),
        prop::option::of(1usize..5000),
        prop::sample::select(vec![VectorElem::F32, VectorElem::I8, VectorElem::F32I8]),
    )
        .prop_map(|(generation, next_id, segments, tombstones, dim, elem)| CommitMeta {
            format: FORMAT_VERSION,
            generation,
            next_id,
            segments,
            tombstones,
            config: IndexConfig { dim, elem, encoder: None, token_codebook: None },
        })
}

proptest! {
    #![proptest_config(cases(64))]

    /// The commit payload comes from `meta.json`: any bytes parse or fail, and a parsed payload
    /// never names a file outside `vectors/`.
    #[test]
    fn fuzz_commit_payload_bytes(b in input(valid_meta().to_payload().into_bytes())) {
        let text = String::from_utf8_lossy(&b);
        if let Ok(meta) = CommitMeta::from_payload(Some(&text)) {
            for name in meta.segments.iter().chain(meta.tombstones.iter()) {
                prop_assert!(!name.contains('/') && !name.contains('\\') && !name.starts_with('.') && !name.is_empty());
            }
        }
    }

    #[test]
    fn fuzz_commit_payload_round_trip(meta in arb_meta()) {
        prop_assert_eq!(CommitMeta::from_payload(Some(&meta.to_payload())).unwrap(), meta);
    }

    /// sled's metadata record and key values are read back from sled's files.
    #[test]
    fn fuzz_keymap_records(b in input(encode_record(&KeyMapMeta { generation: 3, docs: 10, config: valid_meta().config }).unwrap())) {
        let _ = decode_record::<KeyMapMeta>(&b);
        match decode_id(&b) {
            Ok(id) => prop_assert_eq!(b.len(), 8, "an id value is 8 bytes, decoded {}", id),
            Err(e) => prop_assert!(b.len() != 8, "{e}"),
        }
    }

    #[test]
    fn fuzz_keymap_round_trip(generation in any::<u64>(), docs in any::<u64>(), meta in arb_meta(), id in any::<u64>()) {
        let rec = KeyMapMeta { generation, docs, config: meta.config };
        prop_assert_eq!(decode_record::<KeyMapMeta>(&encode_record(&rec).unwrap()).unwrap(), rec);
        prop_assert_eq!(decode_id(&id.to_be_bytes()).unwrap(), id);
    }
}

/// A key-map value shorter than an id, as a damaged sled file can hold, made `get` slice out of
/// bounds (a panic in the writer). It is now an error naming the key.
#[test]
fn fuzz_keymap_regression_short_id_value_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    {
        let index = Index::create(&dir, IndexConfig::text_only()).unwrap();
        let mut w = index.writer().unwrap();
        w.add(Document::new("k1", "one")).unwrap();
        w.commit().unwrap();
    }
    {
        // sled lets go of its lock a moment after the index is dropped: wait for it.
        let start = std::time::Instant::now();
        let db = loop {
            match sled::open(dir.join("keymap")) {
                Ok(db) => break db,
                Err(e) if start.elapsed().as_secs() < 5 => {
                    let _ = e;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("opening the key map: {e}"),
            }
        };
        db.open_tree("keys").unwrap().insert("k1", &b"abc"[..]).unwrap();
        db.flush().unwrap();
    }
    let index = Index::open(&dir).unwrap();
    let err = index.keymap_lookup("k1").unwrap_err();
    assert!(format!("{err:#}").contains("k1"), "{err:#}");
}

// ---- model files -----------------------------------------------------------------------------

/// A tiny model imported from a synthetic q4 file: its bytes, and the directory the importer
/// wrote (`model.safetensors`, `config.json`, `tokenizer.json`).
struct TinyQ4 {
    bin: Vec<u8>,
    tokenizer: PathBuf,
    dir: PathBuf,
}

fn tiny_q4() -> &'static TinyQ4 {
    static T: OnceLock<TinyQ4> = OnceLock::new();
    T.get_or_init(|| {
        let root = scratch().join("tiny-q4");
        std::fs::create_dir_all(&root).unwrap();
        let tokenizer = root.join("tokenizer.json");
        let json = common::tiny::tokenizer_json();
        std::fs::write(&tokenizer, &json).unwrap();
        // The embedded vocabulary is the tokenizer's, id for id (ids the tokenizer skips get
        // a placeholder piece).
        let tok = tokenizers::Tokenizer::from_file(&tokenizer).unwrap();
        let n = tok.get_vocab_size(true) as u32;
        let vocab: Vec<String> = (0..n).map(|i| tok.id_to_token(i).unwrap_or_else(|| format!("[unused{i}]"))).collect();
        let bin = q4_file(&vocab);
        let path = root.join("tiny.bin");
        std::fs::write(&path, &bin).unwrap();
        let dir = root.join("model");
        import_e5_q4(&path, &tokenizer, &dir).unwrap();
        TinyQ4 { bin, tokenizer, dir }
    })
}

/// A valid q4 file (layout in `src/encoder/q4.rs`) of a one-layer BERT, hidden 32, with the
/// given vocabulary; matrices are Q4_0, vectors f32.
fn q4_file(vocab: &[String]) -> Vec<u8> {
    let (h, f, max_pos, types) = (32usize, 64usize, 16usize, 2usize);
    let mut tensors: Vec<(String, Vec<usize>)> = vec![
        ("emb.word".into(), vec![vocab.len(), h]),
        ("emb.pos".into(), vec![max_pos, h]),
        ("emb.type".into(), vec![types, h]),
        ("emb.ln.w".into(), vec![h]),
        ("emb.ln.b".into(), vec![h]),
    ];
    for (short, w, b) in [
        ("q", vec![h, h], vec![h]),
        ("k", vec![h, h], vec![h]),
        ("v", vec![h, h], vec![h]),
        ("ao", vec![h, h], vec![h]),
        ("aln", vec![h], vec![h]),
        ("fi", vec![f, h], vec![f]),
        ("fo", vec![h, f], vec![h]),
        ("oln", vec![h], vec![h]),
    ] {
        tensors.push((format!("l0.{short}.w"), w));
        tensors.push((format!("l0.{short}.b"), b));
    }
    let mut b = Vec::new();
    let i32s = |b: &mut Vec<u8>, xs: &[usize]| xs.iter().for_each(|&x| b.extend_from_slice(&(x as i32).to_le_bytes()));
    b.extend_from_slice(b"E5S1");
    b.extend_from_slice(&1u32.to_le_bytes());
    i32s(&mut b, &[h, 1, 4, f, vocab.len(), max_pos, types]);
    b.extend_from_slice(&1e-12f32.to_le_bytes());
    i32s(&mut b, &[32, vocab.len(), 2, 3, 0, 1]);
    let blob: Vec<u8> = vocab.iter().flat_map(|p| p.bytes()).collect();
    b.extend_from_slice(&(blob.len() as u64).to_le_bytes());
    let mut off = 0u32;
    b.extend_from_slice(&off.to_le_bytes());
    for p in vocab {
        off += p.len() as u32;
        b.extend_from_slice(&off.to_le_bytes());
    }
    vocab.iter().for_each(|_| b.extend_from_slice(&0f32.to_le_bytes()));
    b.extend_from_slice(&blob);
    i32s(&mut b, &[0]);
    b.extend_from_slice(&0u32.to_le_bytes());
    i32s(&mut b, &[tensors.len()]);
    // The directory's size is known before the data: names plus 2 + 1 + 4 + 8 + 8 bytes each.
    let dir_len: usize = tensors.iter().map(|(n, _)| n.len() + 23).sum();
    let mut data_off = b.len() + dir_len;
    let mut data = Vec::new();
    for (i, (name, shape)) in tensors.iter().enumerate() {
        let count: usize = shape.iter().product();
        let q4 = shape.len() == 2;
        let payload: Vec<u8> = if q4 {
            (0..count / 32)
                .flat_map(|j| {
                    let mut block = half::f16::from_f32(0.01 * (i + 1) as f32).to_bits().to_le_bytes().to_vec();
                    block.extend((0..16).map(|k| ((j + k) % 256) as u8));
                    block
                })
                .collect()
        } else {
            (0..count).flat_map(|k| (1.0 + k as f32 * 0.001).to_le_bytes()).collect()
        };
        b.extend_from_slice(&(name.len() as u16).to_le_bytes());
        b.extend_from_slice(name.as_bytes());
        b.push(u8::from(q4));
        b.extend_from_slice(&(count as u32).to_le_bytes());
        b.extend_from_slice(&(data_off as u64).to_le_bytes());
        b.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        data_off += payload.len();
        data.extend(payload);
    }
    b.extend(data);
    b
}

/// Found by `fuzz_q4_import` in the long run: a layer count of 2^30 in the header made the
/// importer list 2^34 expected tensors before reading one, and the process was killed for
/// memory. The header is now checked against the tensor directory.
#[test]
fn fuzz_q4_regression_huge_layer_count_is_an_error() {
    let mut bin = tiny_q4().bin.clone();
    bin[12..16].copy_from_slice(&(1i32 << 30).to_le_bytes()); // layers, after magic, version, hidden
    let err = format!("{:#}", Q4Model::parse(&bin).unwrap_err());
    assert!(err.contains("1073741824 layers"), "{err}");
    let path = file_with("q4-huge-layers.bin", &bin);
    let err = format!("{:#}", import_e5_q4(&path, &tiny_q4().tokenizer, &scratch().join("q4-huge-out")).unwrap_err());
    assert!(err.contains("q4-huge-layers.bin") && err.contains("layers"), "{err}");
}

fn model_config() -> BertConfig {
    BertConfig::load(&tiny_q4().dir.join("config.json")).unwrap()
}

proptest! {
    #![proptest_config(cases(48))]

    #[test]
    fn fuzz_q4_header(b in input(tiny_q4().bin.clone())) {
        let _ = Q4Model::parse(&b);
    }

    /// The whole importer on a damaged file: header, vocabulary check, dequantisation, writing.
    #[test]
    fn fuzz_q4_import(muts in mutations(3)) {
        let t = tiny_q4();
        let bin = file_with("q4.bin", &apply(&t.bin, &muts));
        let out = scratch().join(format!("{:?}-q4-out", std::thread::current().id()).replace(['(', ')'], ""));
        let _ = import_e5_q4(&bin, &t.tokenizer, &out);
    }

    #[test]
    fn fuzz_model_config_json(b in input(std::fs::read(tiny_q4().dir.join("config.json")).unwrap())) {
        if let Ok(config) = BertConfig::load(&file_with("config.json", &b)) {
            let _ = config.head_dim();
        }
    }

    #[test]
    fn fuzz_model_config_round_trip(extra_layers in 0usize..3, heads in prop::sample::select(vec![1usize, 2, 4, 8])) {
        let mut config = model_config();
        config.num_hidden_layers += extra_layers;
        config.num_attention_heads = heads;
        let path = file_with("config-rt.json", b"");
        config.save(&path).unwrap();
        prop_assert_eq!(BertConfig::load(&path).unwrap(), config);
    }

    #[test]
    fn fuzz_model_optical_json(b in input(serde_json::to_vec_pretty(&OpticalMeta { name: "e5".into(), query_prefix: "query: ".into(), passage_prefix: "passage: ".into(), max_length: 128, embedding_space: "8520eedb7ea5147f".into(), ..OpticalMeta::default() }).unwrap())) {
        let _ = OpticalMeta::load(&file_with("optical.json", &b));
    }

    #[test]
    fn fuzz_model_optical_json_round_trip(name in word(), prefix in ".{0,12}", max_length in 2usize..100_000, space in "[0-9a-f]{0,16}") {
        let meta = OpticalMeta { name, query_prefix: prefix, max_length, embedding_space: space, ..OpticalMeta::default() };
        let path = file_with("optical-rt.json", b"");
        meta.save(&path).unwrap();
        prop_assert_eq!(OpticalMeta::load(&path).unwrap(), meta);
    }

    #[test]
    fn fuzz_model_tokenizer_json(b in input(common::tiny::tokenizer_json().into_bytes())) {
        if let Ok(tok) = TextTokenizer::load(&file_with("tokenizer.json", &b), 16) {
            let _ = tok.encode(&["the cat", ""], "query: ");
        }
    }

    /// The weights file: the safetensors header check and the load into the network.
    #[test]
    fn fuzz_model_safetensors(muts in mutations(3), arbitrary in bytes(200), pick in any::<bool>()) {
        let good = std::fs::read(tiny_q4().dir.join("model.safetensors")).unwrap();
        let b = if pick { apply(&good, &muts) } else { arbitrary };
        let path = file_with("model.safetensors", &b);
        let config = model_config();
        if check_safetensors(&path, &config).is_ok() {
            let mut model = BertModel::init_empty(&config, &optical::encoder::default_device());
            let _ = load_weights(&mut model, &path);
        }
    }

    #[test]
    fn fuzz_model_student_manifest(b in input(include_bytes!("../students/multilingual/manifest.json").to_vec())) {
        let _ = StudentManifest::load(&file_with("manifest.json", &b));
    }
}

/// Found by `fuzz_model_tokenizer_json` in the long run: a syntax error inside the `decoder`
/// section made the tokenizers library panic (`expect("Helper")`) instead of returning an
/// error. Loading now reports it as a malformed file, naming it.
#[test]
fn fuzz_model_regression_malformed_decoder_is_an_error() {
    let json = common::tiny::tokenizer_json();
    assert!(json.contains("\"decoder\":null"));
    let bad = json.replace("\"decoder\":null", "\"decoder\":{\"type\":\"WordPiece\",\"prefix\":}");
    let path = file_with("tokenizer-bad-decoder.json", bad.as_bytes());
    let err = format!("{:#}", TextTokenizer::load(&path, 16).unwrap_err());
    assert!(err.contains("tokenizer-bad-decoder.json") && err.contains("panicked"), "{err}");
    let err = format!("{:#}", optical::encoder::q4::import_e5_q4(&file_with("q4-for-bad-tok.bin", &tiny_q4().bin), &path, &scratch().join("bad-tok-out")).unwrap_err());
    assert!(err.contains("tokenizer-bad-decoder.json"), "{err}");
}

// ---- distillation files ----------------------------------------------------------------------

fn records() -> Vec<Record> {
    vec![
        Record::Train { step: 1, epoch: 0, loss: 0.5, ot: Some(0.4), mse: None, lr: 3e-5, grad_norm: 1.5, step_s: 0.2, elapsed_s: 0.2 },
        Record::Dev(DevMetrics { step: 1, mean_cos: 0.8, accuracy: 0.7, loss: 0.4, pairs: 100, search_accuracy: 0.6, search_mean_cos: 0.7 }),
    ]
}

proptest! {
    #![proptest_config(cases(48))]

    #[test]
    fn fuzz_distill_toml(b in input(include_bytes!("../configs/distill-swa.toml").to_vec())) {
        let _ = DistillConfig::from_file(&file_with("distill.toml", &b));
    }

    /// `metrics.jsonl` is read back to draw the plot: the plot must survive what the log holds.
    #[test]
    fn fuzz_distill_metrics_log(b in input(records().iter().map(|r| serde_json::to_string(r).unwrap() + "\n").collect::<String>().into_bytes())) {
        if let Ok(recs) = read_records(&file_with("metrics.jsonl", &b)) {
            let _ = plot(&recs, &file_with("metrics.svg", b""), "fuzz");
        }
    }

    #[test]
    fn fuzz_distill_metrics_round_trip(step in any::<u32>(), loss in -1e6f32..1e6, acc in 0f32..1.0) {
        let mut recs = records();
        recs.push(Record::Train { step: step as usize, epoch: 1, loss, ot: None, mse: Some(loss), lr: 1e-4, grad_norm: acc, step_s: 1.0, elapsed_s: 2.0 });
        let text: String = recs.iter().map(|r| serde_json::to_string(r).unwrap() + "\n").collect();
        prop_assert_eq!(read_records(&file_with("metrics-rt.jsonl", text.as_bytes())).unwrap(), recs);
    }

    #[test]
    fn fuzz_bitext(b in input(b"ruwa mai tsabta\tclean water\r\n\nkasuwa\tmarket\n".to_vec())) {
        let _ = read_bitext(&file_with("bitext.tsv", &b));
    }

    /// Gzipped bitext: the decoder meets damaged streams.
    #[test]
    fn fuzz_bitext_gzip(muts in mutations(3)) {
        let _ = read_bitext(&file_with("bitext.tsv.gz", &apply(&gzip(b"a b\tc d\ne\tf\n"), &muts)));
    }

    #[test]
    fn fuzz_bitext_round_trip(pairs in prop::collection::vec((word(), word()), 1..10)) {
        let text: String = pairs.iter().map(|(a, b)| format!("{a}\t{b}\n")).collect();
        let want: Vec<BitextPair> = pairs.into_iter().map(|(foreign, english)| BitextPair { foreign, english }).collect();
        prop_assert_eq!(read_bitext(&file_with("bitext-rt.tsv", text.as_bytes())).unwrap(), want.clone());
        prop_assert_eq!(read_bitext(&file_with("bitext-rt.tsv.gz", &gzip(text.as_bytes()))).unwrap(), want);
    }
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

// ---- corpora, queries, runs, qrels, results --------------------------------------------------

const CORPUS: &str = concat!(
    "{\"id\":\"d1\",\"title\":\"Water\",\"text\":\"Clean water\",\"lang\":\"eng\",\"vector\":[0.5,-1,2e3]}\n",
    "{\"_id\":7,\"text\":\"Maji safi\",\"lang\":\"swa\",\"extra\":{\"a\":[1]}}\n",
    "\n",
    "\u{feff}{\"id\":\"d3\",\"title\":\"Only a title\"}\n",
);

fn read_all_corpus(b: &[u8]) -> Vec<CorpusItem> {
    let mut r = CorpusReader::from_reader("corpus.jsonl", Box::new(std::io::Cursor::new(b.to_vec())), None);
    let mut items = Vec::new();
    while let Ok(Some(item)) = r.next_line() {
        items.push(item);
    }
    items
}

proptest! {
    #![proptest_config(cases(64))]

    /// Every bad line of a corpus names the file and its line, and a good one has an id.
    #[test]
    fn fuzz_corpus_jsonl(b in input(CORPUS.as_bytes().to_vec())) {
        for item in read_all_corpus(&b) {
            match item {
                Ok((_, doc)) => prop_assert!(!doc.id.is_empty() && doc.id.len() <= optical::engine::MAX_KEY_BYTES),
                Err(bad) => {
                    let prefix = format!("corpus.jsonl:{}:", bad.line);
                    prop_assert!(bad.to_string().starts_with(&prefix), "{bad}");
                }
            }
        }
    }

    #[test]
    fn fuzz_corpus_gzip(muts in mutations(3)) {
        let path = file_with("corpus.jsonl.gz", &apply(&gzip(CORPUS.as_bytes()), &muts));
        if let Ok(reader) = CorpusReader::open(&path) {
            for item in reader {
                if item.is_err() {
                    break;
                }
            }
        }
    }

    #[test]
    fn fuzz_corpus_round_trip(docs in prop::collection::vec((word(), ".{0,20}", "[^\\s]{1}.{0,30}", prop::option::of("[a-z]{3}")), 1..8)) {
        let mut want = Vec::new();
        let mut text = String::new();
        for (i, (id, title, body, lang)) in docs.into_iter().enumerate() {
            let id = format!("{id}-{i}");
            text.push_str(&serde_json::json!({"id": id, "title": title, "text": body, "lang": lang}).to_string());
            text.push('\n');
            want.push((id, title, body, lang));
        }
        let got: Vec<_> = read_all_corpus(text.as_bytes())
            .into_iter()
            .map(|item| item.map(|(_, d)| (d.id, d.title, d.text, d.lang)).map_err(|b| b.to_string()))
            .collect::<Result<_, _>>()
            .unwrap();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn fuzz_beir_queries(b in input(b"{\"_id\":\"q1\",\"text\":\"what is water\",\"lang\":\"eng\"}\n{\"_id\":2,\"text\":\"maji\"}\n".to_vec()), gz in any::<bool>()) {
        let path = if gz { file_with("queries.jsonl.gz", &gzip(&b)) } else { file_with("queries.jsonl", &b) };
        let _ = read_queries(&path);
        let _ = optical::corpus::read_corpus(&path);
    }

    #[test]
    fn fuzz_beir_qrels(b in input(b"query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t2.0\r\nq2\td1\t0\n".to_vec())) {
        let _ = Qrels::parse_beir(std::io::Cursor::new(b), "qrels.tsv");
    }

    #[test]
    fn fuzz_trec_qrels(b in input(b"q1 0 d1 1\nq1 0 d2 2\n\nq2 Q0 d1 0\n".to_vec())) {
        let _ = Qrels::parse_trec(std::io::Cursor::new(b), "qrels.txt");
    }

    #[test]
    fn fuzz_trec_qrels_round_trip(judged in prop::collection::btree_map((word(), word()), -3i32..5, 0..20)) {
        let mut text = String::new();
        for ((q, d), rel) in &judged {
            text.push_str(&format!("{q} 0 {d} {rel}\n"));
        }
        let qrels = Qrels::parse_trec(std::io::Cursor::new(text), "a").unwrap();
        let mut out = Vec::new();
        qrels.write_trec(&mut out).unwrap();
        let again = Qrels::parse_trec(std::io::Cursor::new(out), "b").unwrap();
        prop_assert_eq!(again.num_judgements(), judged.len());
        prop_assert_eq!(qrels, again);
    }

    #[test]
    fn fuzz_trec_run(b in input(b"q1 Q0 d1 1 12.5 bm25\nq1 Q0 d2 2 -3e-2 bm25\nq2 Q0 d9 1 0 bm25\n".to_vec())) {
        if let Ok(run) = Run::parse_trec(std::io::Cursor::new(b), "run.txt") {
            let mut out = Vec::new();
            if run.write_trec(&mut out, "fuzz").is_ok() {
                prop_assert_eq!(rankings(&Run::parse_trec(std::io::Cursor::new(out), "again").unwrap()), rankings(&run));
            }
        }
    }

    /// Scores read back bit for bit.
    #[test]
    fn fuzz_trec_run_round_trip(scored in prop::collection::btree_map((word(), word()), -1e30f64..1e30, 0..20)) {
        let mut text = String::new();
        for ((q, d), s) in &scored {
            text.push_str(&format!("{q} Q0 {d} 1 {s} t\n"));
        }
        let run = Run::parse_trec(std::io::Cursor::new(text), "a").unwrap();
        let mut out = Vec::new();
        run.write_trec(&mut out, "t").unwrap();
        prop_assert_eq!(rankings(&Run::parse_trec(std::io::Cursor::new(out), "b").unwrap()), rankings(&run));
    }

    /// A results table is read back to be merged and rendered.
    #[test]
    fn fuzz_results_json(b in input(results_table().to_json().into_bytes())) {
        if let Ok(t) = ResultsTable::read_json(&file_with("results.json", &b)) {
            let _ = t.to_markdown();
            let _ = t.to_markdown_pivot(Metric::parse_list("ndcg@10").unwrap()[0]);
        }
    }
}

/// Every query's ranking (a run read back from its written form lists documents in rank
/// order, the original in file order).
fn rankings(run: &Run) -> Vec<(String, Vec<(String, u64)>)> {
    run.query_ids()
        .map(|q| (q.to_string(), run.ranking(q).unwrap().into_iter().map(|d| (d.doc_id.clone(), d.score.to_bits())).collect()))
        .collect()
}

fn results_table() -> ResultsTable {
    let mut t = ResultsTable::new(Metric::parse_list("ndcg@10,mrr@10").unwrap());
    let row = serde_json::json!({"collection": "scifact", "split": "test", "queries": "queries.jsonl", "mode": "hybrid",
        "system": "e5 + bm25", "num_queries": 300, "scores": {"nDCG@10": 0.66, "MRR@10": 0.62},
        "baseline": "bm25", "p_values": {"nDCG@10": 0.01}});
    t.upsert(serde_json::from_value::<ResultRow>(row).unwrap());
    t
}

// ---- translation tables ----------------------------------------------------------------------

fn arb_table() -> impl Strategy<Value = TranslationTable> {
    prop::collection::btree_map(word(), prop::collection::vec((word(), 0.001f32..=1.0), 1..4), 0..8).prop_map(|entries| {
        let mut t = TranslationTable::new("hau", "eng", "ibm-model1");
        for (f, list) in entries {
            t.insert(&f, list);
        }
        t
    })
}

proptest! {
    #![proptest_config(cases(64))]

    /// Mutations of a valid table (the arbitrary-bytes case is in `tests/search_psq.rs`): the
    /// checksum refuses any edit of the rows, and the parser never panics on header edits.
    #[test]
    fn fuzz_translation_table(t in arb_table(), muts in mutations(3)) {
        let good = t.to_tsv().unwrap();
        let b = apply(good.as_bytes(), &muts);
        let text = String::from_utf8_lossy(&b);
        if let Ok(parsed) = TranslationTable::parse(&text) {
            // Only header edits can pass (the checksum covers every row).
            prop_assert_eq!(parsed.len(), t.len());
        }
    }

    #[test]
    fn fuzz_translation_table_round_trip(t in arb_table()) {
        let path = file_with("table.tsv", b"");
        t.write(&path).unwrap();
        prop_assert_eq!(TranslationTable::read(&path).unwrap(), t);
    }
}

// ---- what users type: CLI specs and query text -----------------------------------------------

/// A small index shared by the query-text properties.
fn query_index() -> &'static Index {
    static I: OnceLock<Index> = OnceLock::new();
    I.get_or_init(|| {
        let index = Index::create(scratch().join("query-index"), IndexConfig::with_vectors(4)).unwrap();
        let mut w = index.writer().unwrap();
        for (i, (text, lang)) in
            [("Clean water reaches every home", "eng"), ("Maji safi yanafika", "swa"), ("ruwa mai tsabta", "hau")].iter().enumerate()
        {
            w.add(Document::new(format!("d{i}"), *text).with_lang(*lang).with_vector(vec![i as f32, 1.0, 0.5, -1.0])).unwrap();
        }
        w.commit().unwrap();
        index
    })
}

proptest! {
    #![proptest_config(cases(64))]

    #[test]
    fn fuzz_user_specs(s in prop_oneof![".{0,30}", "(rrf|linear|zscore|confidence|bylang|ndcg|mrr|recall|map)[:@,.0-9e+-]{0,12}"]) {
        let _ = Fusion::parse_list(&s, 60.0, 0.5);
        let _ = Metric::parse_list(&s);
        let _ = s.parse::<VectorElem>();
    }

    /// Query text goes to tantivy's query parser and the analyzers: any text searches or fails
    /// with an error, in every mode and with any language code.
    #[test]
    fn fuzz_query_text(q in prop_oneof![".{0,40}", "[a-z ():+\"*^~\\[\\]{}!-]{0,30}"], lang in prop::option::of(".{0,5}"), k in 0usize..5) {
        let index = query_index();
        let snap = index.snapshot();
        let _ = common::bm25(&snap, &q, k, lang.as_deref());
        let searcher = Searcher::for_index(index);
        for mode in [Mode::Bm25, Mode::Dense, Mode::Hybrid] {
            let mut req = SearchRequest::new(q.clone()).with_mode(mode).with_k(k).with_query_vector(vec![0.1, 0.2, 0.3, 0.4]);
            if let Some(l) = &lang {
                req = req.with_query_lang(l.clone());
            }
            let _ = searcher.search(&req);
        }
    }
}
