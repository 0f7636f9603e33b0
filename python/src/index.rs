//! `Index`, `IndexWriter`, `Encoder`, `ingest`: the library's index, writer and encoder for
//! Python. Searches pick their query encoder and translation tables the way `optical search`
//! does: the shipped student for the index's embedding space (per `query_lang`), else the
//! index's own encoder; the PSQ table shipped with that student for `query_lang`.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use optical::encoder::{Encoder as RustEncoder, Role, students};
use optical::engine::{Index, IndexConfig, IndexWriter, VectorElem, index_config_for, load_encoder, recorded_model_dir};
use optical::ingest::{IngestOptions, IngestReport};
use optical::search::{Fusion, Mode, RerankChoice, SearchRequest, Searcher};
use optical::translate::read_tables;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::convert;
use crate::errors::{IntoPy, to_py};

/// Loaded encoders by model directory: loading e5 takes seconds, so an index keeps the ones its
/// searches and writers used.
#[derive(Default)]
pub struct EncoderCache(Mutex<HashMap<PathBuf, Arc<RustEncoder>>>);

impl EncoderCache {
    /// A `model=` argument: a model directory, or an `optical.Encoder` already loaded (an
    /// actor that loads its encoder once passes it to every index it writes). Returns the
    /// directory to look up, the loaded encoder cached under it.
    pub fn resolve(&self, obj: &Bound<'_, PyAny>) -> PyResult<PathBuf> {
        let inner = if obj.hasattr("_encoder")? { obj.getattr("_encoder")? } else { obj.clone() };
        if let Ok(enc) = inner.cast::<Encoder>() {
            let enc = Arc::clone(&enc.get().encoder);
            let dir = enc.dir().to_path_buf();
            self.0.lock().expect("encoder cache poisoned").insert(dir.clone(), enc);
            return Ok(dir);
        }
        inner.extract::<PathBuf>()
    }

    /// The encoder of `dir`, loaded once.
    pub fn get(&self, dir: &Path) -> optical::Result<Arc<RustEncoder>> {
        let mut map = self.0.lock().expect("encoder cache poisoned");
        if let Some(e) = map.get(dir) {
            return Ok(Arc::clone(e));
        }
        let e = Arc::new(load_encoder(dir)?);
        map.insert(dir.to_path_buf(), Arc::clone(&e));
        Ok(e)
    }
}

/// An Optical index directory.
///
/// `Index.create(path, model=DIR)` makes an index whose documents the encoder in `DIR` encodes
/// (the index records it); `Index.create(path, dim=N)` one whose documents bring their own
/// vectors; `Index.create(path)` a text-only (BM25) index. `Index.open(path)` opens for
/// writing (one process at a time), `Index.open(path, read_only=True)` for searching beside a
/// writer elsewhere (call `reload()` to see its later commits).
#[pyclass(name = "Index", module = "optical", frozen)]
pub struct PyIndex {
    pub(crate) index: Index,
    read_only: bool,
    encoders: Arc<EncoderCache>,
    /// The model directory this handle created the index with (its document encoder).
    model: Option<PathBuf>,
}

#[pymethods]
impl PyIndex {
    #[staticmethod]
    #[pyo3(signature = (path, *, model=None, dim=None, elem=None))]
    fn create(py: Python<'_>, path: PathBuf, model: Option<Bound<'_, PyAny>>, dim: Option<usize>, elem: Option<&str>) -> PyResult<PyIndex> {
        let encoders = Arc::new(EncoderCache::default());
        let model = model.map(|m| encoders.resolve(&m)).transpose()?;
        let elem: Option<VectorElem> = elem.map(|e| e.parse()).transpose().map_err(|e: optical::Error| to_py(e))?;
        let index = py
            .detach(|| -> optical::Result<Index> {
                let encoder = model.as_ref().map(|m| encoders.get(m)).transpose()?;
                let mut config = match &encoder {
                    Some(e) => index_config_for(e),
                    None => IndexConfig { dim, ..IndexConfig::default() },
                };
                if let Some(e) = elem {
                    config.elem = e;
                }
                if model.is_some() && dim.is_some_and(|d| Some(d) != config.dim) {
                    return Err(optical::Error::Invalid {
                        message: format!("dim={} contradicts model {} (dimension {:?})", dim.unwrap_or(0), model.as_ref().map(|m| m.display().to_string()).unwrap_or_default(), config.dim),
                    });
                }
                // As `optical index` does: an encoder with a token codebook makes an index that
                // stores its passages' token codes (the default rerank reads them).
                match encoder.as_ref().and_then(|e| e.codebook()) {
                    Some(book) => Index::create_with_codebook(&path, config, book),
                    None => Index::create(&path, config),
                }
            })
            .py_err()?;
        Ok(PyIndex { index, read_only: false, encoders, model })
    }

    #[staticmethod]
    #[pyo3(signature = (path, *, read_only=false))]
    fn open(py: Python<'_>, path: PathBuf, read_only: bool) -> PyResult<PyIndex> {
        let index = py
            .detach(|| if read_only { Index::open_read_only(&path) } else { Index::open(&path) })
            .py_err()?;
        Ok(PyIndex { index, read_only, encoders: Arc::new(EncoderCache::default()), model: None })
    }

    /// The index directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.index.dir().to_path_buf()
    }

    /// Live documents in the last commit this handle sees.
    fn __len__(&self) -> usize {
        self.index.snapshot().num_docs() as usize
    }

    /// The vector dimension (None for a text-only index).
    #[getter]
    fn dim(&self) -> Option<usize> {
        self.index.config().dim
    }

    /// The commit generation this handle sees.
    #[getter]
    fn generation(&self) -> u64 {
        self.index.snapshot().generation()
    }

    /// The document encoder the index records (`name`, `dim`, `fingerprint`,
    /// `embedding_space`), or None.
    #[getter]
    fn encoder<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(rec) = self.index.config().encoder else { return Ok(None) };
        let d = PyDict::new(py);
        d.set_item("name", rec.name)?;
        d.set_item("dim", rec.dim)?;
        d.set_item("fingerprint", rec.fingerprint)?;
        d.set_item("embedding_space", rec.embedding_space)?;
        Ok(Some(d))
    }

    /// The token codes the index stores for the late-interaction rerank (`centroids`, `bits`,
    /// `bytes_per_token`, `fingerprint` of the codebook, as `optical info --json` prints them), or
    /// None: an index without codes reranks only when asked (`rerank="maxsim…"`), encoding the
    /// candidates at query time.
    #[getter]
    fn token_codes<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let snap = self.index.snapshot();
        let Some(book) = snap.codebook() else { return Ok(None) };
        let d = PyDict::new(py);
        d.set_item("centroids", book.centroids())?;
        d.set_item("bits", book.bits())?;
        d.set_item("bytes_per_token", book.bytes_per_token())?;
        d.set_item("fingerprint", self.index.config().token_codebook)?;
        Ok(Some(d))
    }

    /// Re-reads the latest commit (a read-only handle sees later commits of a writer elsewhere
    /// only after this). Returns the generation.
    fn reload(&self, py: Python<'_>) -> PyResult<u64> {
        py.detach(|| self.index.reload()).map(|s| s.generation()).py_err()
    }

    /// A writer (one per index at a time). Documents added without a vector are encoded by the
    /// index's document encoder: `model`, else the one this handle was created with, else the
    /// model directory the index recorded at its last encoding commit.
    #[pyo3(signature = (*, model=None))]
    fn writer(&self, py: Python<'_>, model: Option<Bound<'_, PyAny>>) -> PyResult<PyWriter> {
        let model = model.map(|m| self.encoders.resolve(&m)).transpose()?;
        py.detach(|| -> optical::Result<PyWriter> {
            let writer = self.index.writer()?;
            let encoder = match model {
                Some(m) => Some(self.encoders.get(&m)?),
                None => self.document_encoder()?,
            };
            let writer = match encoder {
                Some(e) => writer.with_encoder(e)?,
                None => writer,
            };
            Ok(PyWriter { writer: Mutex::new(Some(writer)), dir: self.index.dir().to_path_buf() })
        })
        .py_err()
    }

    /// Searches the index; returns the hits best first, as dicts with `rank`, `id`, `score`,
    /// `title`, `text`, `lang` and `explain` (per leg: `bm25_rank`, `bm25_score`, `dense_rank`,
    /// `dense_score`, `fused_score`).
    ///
    /// `mode`: "bm25", "dense" or "hybrid" (default: hybrid when the index records an encoder,
    /// else bm25). `query_lang` (ISO 639-3) picks the shipped student and the PSQ table, as
    /// `optical search --query-lang` does; `model` names the query encoder instead;
    /// `query_vector` skips query encoding. `fusion`: e.g. "rrf:60", "zscore:0.7",
    /// "bylang:0.8:0.5" (the default). `lang` keeps only documents in that language. `psq`:
    /// use the translation table of `query_lang` (PSQ in the BM25 leg, the query's gloss for
    /// the dense encoder — `dense_query_text` shows that text — and its English rendering for
    /// the rerank stage). `rerank`: "maxsim[:DEPTH[:WEIGHT]]"
    /// reranks the top hits of a cross-lingual query by late interaction (`explain` then has
    /// `maxsim_score`; a query in the documents' language keeps the fused order); "auto" (the
    /// default) does so with "maxsim:30:0.4" on an index that stores token codes (a few ms) and
    /// not at all on one without; "none" never. On an index without token codes a stage encodes
    /// the passages with the index's document encoder (≈ 0.1 s per query on 2 cores).
    #[pyo3(signature = (query, *, mode=None, k=10, query_lang=None, lang=None, fusion=None, model=None, query_vector=None, psq=true, explain=true, rerank="auto"))]
    #[allow(clippy::too_many_arguments)]
    fn search<'py>(
        &self,
        py: Python<'py>,
        query: &str,
        mode: Option<&str>,
        k: usize,
        query_lang: Option<String>,
        lang: Option<String>,
        fusion: Option<&str>,
        model: Option<PathBuf>,
        query_vector: Option<Bound<'py, PyAny>>,
        psq: bool,
        explain: bool,
        rerank: &str,
    ) -> PyResult<Bound<'py, PyList>> {
        let config = self.index.config();
        let mode: Mode = match mode {
            Some(m) => m.parse().map_err(|e: optical::Error| to_py(e))?,
            None if config.encoder.is_some() => Mode::Hybrid,
            None => Mode::Bm25,
        };
        let query_vector = query_vector.map(|v| convert::vector(&v)).transpose()?;
        let fusion = fusion.map(|f| Fusion::parse_with_defaults(f, optical::search::fusion::DEFAULT_RRF_K, optical::search::fusion::DEFAULT_DENSE_WEIGHT)).transpose().py_err()?;
        let rerank: RerankChoice = rerank.parse().py_err()?;
        let query = query.to_string();
        let (snap, results) = py
            .detach(|| -> optical::Result<_> {
                let mut searcher = self.searcher(mode, query_vector.is_some(), model.as_deref(), query_lang.as_deref(), lang.as_deref(), psq)?;
                let mut req = SearchRequest::new(query).with_k(k).with_mode(mode).with_explain(explain);
                if let RerankChoice::On(r) = rerank
                    && mode != Mode::Bm25
                    && searcher.snapshot().codebook().is_none()
                {
                    let Some(doc_encoder) = self.document_encoder()? else {
                        return Err(optical::Error::Invalid {
                            message: format!("rerank={r} encodes the top passages with the index's document encoder (the index stores no token codes), but index {} does not know its model directory", self.index.dir().display()),
                        });
                    };
                    searcher = searcher.with_document_encoder(doc_encoder)?;
                }
                req = req.with_rerank_choice(rerank);
                if let Some(f) = fusion {
                    req = req.with_fusion(f);
                }
                if let Some(l) = query_lang {
                    req = req.with_query_lang(l);
                }
                if let Some(l) = lang {
                    req = req.with_lang_filter(l);
                }
                if let Some(v) = query_vector {
                    req = req.with_query_vector(v);
                }
                let results = searcher.search(&req)?;
                Ok((searcher.snapshot().clone(), results))
            })
            .py_err()?;
        let out = PyList::empty(py);
        for (i, h) in results.hits.iter().enumerate() {
            out.append(convert::hit(py, &snap, i + 1, h)?)?;
        }
        Ok(out)
    }

    /// The document with this key (dict with `id`, `title`, `text`, `lang`, and `vector` when
    /// `vector=True`), or None.
    #[pyo3(signature = (id, *, vector=false))]
    fn get<'py>(&self, py: Python<'py>, id: &str, vector: bool) -> PyResult<Option<Bound<'py, PyDict>>> {
        let snap = self.index.snapshot();
        match snap.document_by_key(id).py_err()? {
            Some(doc) => Ok(Some(convert::stored(py, &snap, doc, vector)?)),
            None => Ok(None),
        }
    }

    /// Every live document's key, sorted.
    fn keys(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let snap = self.index.snapshot();
        let mut keys: Vec<String> = py.detach(|| snap.keys()).py_err()?.into_iter().map(|(k, _)| k).collect();
        keys.sort();
        Ok(keys)
    }

    /// Every live document as a dict (see `get`), in key order: what an export reads.
    #[pyo3(signature = (*, vector=true))]
    fn documents<'py>(&self, py: Python<'py>, vector: bool) -> PyResult<Bound<'py, PyList>> {
        let snap = self.index.snapshot();
        let mut keys = py.detach(|| snap.keys()).py_err()?;
        keys.sort();
        let out = PyList::empty(py);
        for (_, id) in keys {
            if let Some(doc) = snap.document(id).py_err()? {
                out.append(convert::stored(py, &snap, doc, vector)?)?;
            }
        }
        Ok(out)
    }

    /// Every live document's BM25 sparse vector as `{id: {dimension: weight}}`: its dot product
    /// with `sparse_query(...)` is the score Optical's BM25 leg gives the document (the Milvus
    /// export's sparse field; the library's `engine::sparse`).
    fn sparse_documents<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let snap = self.index.snapshot();
        let docs = py.detach(|| snap.bm25_sparse_documents()).py_err()?;
        let out = PyDict::new(py);
        for (key, v) in docs {
            out.set_item(key, v.into_iter().collect::<HashMap<u32, f32>>())?;
        }
        Ok(out)
    }

    /// The sparse vector (`{dimension: weight}`) of the BM25 leg of a search: PSQ-translated
    /// with the table for `query_lang` as `search` would, translations in bodies for
    /// mode="hybrid" and in titles and bodies for mode="bm25".
    #[pyo3(signature = (query, *, mode="hybrid", query_lang=None, lang=None, psq=true))]
    fn sparse_query(&self, py: Python<'_>, query: &str, mode: &str, query_lang: Option<String>, lang: Option<String>, psq: bool) -> PyResult<HashMap<u32, f32>> {
        let mode: Mode = mode.parse().map_err(|e: optical::Error| to_py(e))?;
        let query = query.to_string();
        py.detach(|| -> optical::Result<HashMap<u32, f32>> {
            let searcher = self.searcher(Mode::Bm25, false, None, query_lang.as_deref(), lang.as_deref(), psq)?;
            let mut req = SearchRequest::new(query).with_mode(mode);
            if let Some(l) = query_lang {
                req = req.with_query_lang(l);
            }
            Ok(searcher.bm25_sparse_query(&req)?.into_iter().collect())
        })
        .py_err()
    }

    /// The text the dense leg encodes for `query`, as `search` would: the query with its English
    /// gloss appended when `query_lang` has a translation table (and `psq`), else the query.
    #[pyo3(signature = (query, *, query_lang=None, lang=None, psq=true))]
    fn dense_query_text(&self, py: Python<'_>, query: &str, query_lang: Option<String>, lang: Option<String>, psq: bool) -> PyResult<String> {
        py.detach(|| -> optical::Result<String> {
            let searcher = self.searcher(Mode::Bm25, false, None, query_lang.as_deref(), lang.as_deref(), psq)?;
            Ok(searcher.dense_query_text(query, query_lang.as_deref()).into_owned())
        })
        .py_err()
    }

    fn __repr__(&self) -> String {
        let snap = self.index.snapshot();
        format!(
            "optical.Index({:?}, docs={}, dim={:?}, generation={}{})",
            self.index.dir().display().to_string(),
            snap.num_docs(),
            self.index.config().dim,
            snap.generation(),
            if self.read_only { ", read_only=True" } else { "" }
        )
    }
}

impl PyIndex {
    /// A read-only handle of the index at `path`.
    pub(crate) fn read_only(path: &Path) -> optical::Result<PyIndex> {
        Ok(PyIndex { index: Index::open_read_only(path)?, read_only: true, encoders: Arc::new(EncoderCache::default()), model: None })
    }

    /// The index's document encoder: the one it was created with in this process, else the
    /// model directory recorded beside it (None when it records no encoder or no directory).
    fn document_encoder(&self) -> optical::Result<Option<Arc<RustEncoder>>> {
        if let Some(m) = &self.model {
            return Ok(Some(self.encoders.get(m)?));
        }
        if self.index.config().encoder.is_none() {
            return Ok(None);
        }
        recorded_model_dir(self.index.dir()).map(|m| self.encoders.get(&m)).transpose()
    }

    /// A searcher of the current snapshot with the query encoder and translation tables that
    /// `optical search` would use for these options.
    pub(crate) fn searcher(
        &self,
        mode: Mode,
        has_vector: bool,
        model: Option<&Path>,
        query_lang: Option<&str>,
        doc_lang: Option<&str>,
        psq: bool,
    ) -> optical::Result<Searcher> {
        let config = self.index.config();
        let mut searcher = Searcher::for_index(&self.index);
        if mode != Mode::Bm25 && !has_vector {
            let encoder = match model {
                Some(m) => self.encoders.get(m)?,
                None => match default_query_model_for(&config, self.index.dir(), query_lang, doc_lang) {
                    Some(m) => self.encoders.get(&m)?,
                    None => match self.document_encoder()? {
                        Some(e) => e,
                        None => {
                            return Err(optical::Error::Invalid {
                                message: format!(
                                    "{mode} search needs a query encoder: index {} knows none; pass model=DIR or query_vector=",
                                    self.index.dir().display()
                                ),
                            });
                        }
                    },
                },
            };
            searcher = searcher.with_encoder(encoder)?;
        }
        // Tables serve both legs: PSQ for BM25, the query's gloss for the dense encoder.
        if psq
            && let Some(space) = config.encoder.as_ref().map(|e| e.embedding_space.clone())
            && let Some(table) = students::default_translation_table(&space, query_lang, doc_lang)
        {
            for t in read_tables(&table).map_err(optical::Error::from)? {
                if doc_lang != Some(t.source.as_str()) {
                    searcher = searcher.with_translation_table(Arc::new(t));
                }
            }
        }
        Ok(searcher)
    }
}

/// The query encoder `optical search` uses by default for an index: the installed student of
/// its embedding space (per query language), else the model recorded beside the index.
fn default_query_model_for(config: &IndexConfig, dir: &Path, query_lang: Option<&str>, doc_lang: Option<&str>) -> Option<PathBuf> {
    let rec = config.encoder.as_ref()?;
    students::default_student(&rec.embedding_space, query_lang, doc_lang).or_else(|| recorded_model_dir(dir))
}

/// The model directory that encodes queries for the index at `path` by default (the shipped
/// student for `query_lang`, else the index's own encoder), or None.
#[pyfunction]
#[pyo3(signature = (path, *, query_lang=None, lang=None))]
pub fn default_query_model(path: PathBuf, query_lang: Option<&str>, lang: Option<&str>) -> PyResult<Option<PathBuf>> {
    let index = Index::open_read_only(&path).py_err()?;
    Ok(default_query_model_for(&index.config(), &path, query_lang, lang))
}

/// Adds, replaces and deletes documents; `commit()` makes the changes visible at once in BM25
/// and vectors. As a context manager it commits on a clean exit and rolls back on an exception.
#[pyclass(name = "IndexWriter", module = "optical", frozen)]
pub struct PyWriter {
    writer: Mutex<Option<IndexWriter>>,
    /// The index directory (named in errors). Not the `Index`: a closed writer must not keep
    /// the index open.
    dir: PathBuf,
}

impl PyWriter {
    fn with<T>(&self, py: Python<'_>, f: impl FnOnce(&mut IndexWriter) -> optical::Result<T> + Send) -> PyResult<T>
    where
        T: Send,
    {
        py.detach(|| {
            let mut guard = self.writer.lock().expect("writer lock poisoned");
            match guard.as_mut() {
                Some(w) => f(w),
                None => Err(optical::Error::Invalid {
                    message: format!("the writer of index {} is closed", self.dir.display()),
                }),
            }
        })
        .py_err()
    }
}

#[pymethods]
impl PyWriter {
    /// Adds a new document (an error if the key exists; see `upsert`). Without `vector`, the
    /// writer's encoder computes it. Returns the internal id.
    #[pyo3(signature = (id, text, *, title=None, lang=None, vector=None))]
    fn add(&self, py: Python<'_>, id: String, text: String, title: Option<String>, lang: Option<String>, vector: Option<Bound<'_, PyAny>>) -> PyResult<u64> {
        let doc = make_doc(id, text, title, lang, vector)?;
        self.with(py, |w| w.add(doc))
    }

    /// Adds or replaces the document with this key. Returns the new internal id.
    #[pyo3(signature = (id, text, *, title=None, lang=None, vector=None))]
    fn upsert(&self, py: Python<'_>, id: String, text: String, title: Option<String>, lang: Option<String>, vector: Option<Bound<'_, PyAny>>) -> PyResult<u64> {
        let doc = make_doc(id, text, title, lang, vector)?;
        self.with(py, |w| w.upsert(doc))
    }

    /// Adds documents (dicts with `id`, `text`, optional `title`, `lang`, `vector`), encoded
    /// in one encoder call; a bad one adds none. Returns their internal ids.
    #[pyo3(signature = (docs, *, lang="und"))]
    fn add_batch(&self, py: Python<'_>, docs: Bound<'_, PyAny>, lang: &str) -> PyResult<Vec<u64>> {
        let docs = docs.try_iter()?.map(|d| convert::document(&d?, lang)).collect::<PyResult<Vec<_>>>()?;
        self.with(py, |w| w.add_batch(docs))
    }

    /// Deletes the document with this key; returns whether one existed.
    fn delete(&self, py: Python<'_>, id: String) -> PyResult<bool> {
        self.with(py, |w| w.delete(&id))
    }

    /// Makes every pending change durable and visible. Returns `generation`, `added`,
    /// `removed`, `docs`.
    fn commit<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let info = self.with(py, |w| w.commit())?;
        let d = PyDict::new(py);
        d.set_item("generation", info.generation)?;
        d.set_item("added", info.added)?;
        d.set_item("removed", info.removed)?;
        d.set_item("docs", info.docs)?;
        Ok(d)
    }

    /// Drops every uncommitted change.
    fn rollback(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |w| w.rollback())
    }

    /// Uncommitted key changes.
    #[getter]
    fn pending(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |w| Ok(w.pending()))
    }

    /// Closes the writer (uncommitted changes are dropped), so that another can open.
    fn close(&self) {
        self.writer.lock().expect("writer lock poisoned").take();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(&self, py: Python<'_>, exc_type: Option<Bound<'_, PyAny>>, _exc: Option<Bound<'_, PyAny>>, _tb: Option<Bound<'_, PyAny>>) -> PyResult<bool> {
        let result = if exc_type.is_none() { self.with(py, |w| w.commit().map(|_| ())) } else { self.with(py, |w| w.rollback()) };
        self.close();
        result.map(|()| false)
    }
}

fn make_doc(id: String, text: String, title: Option<String>, lang: Option<String>, vector: Option<Bound<'_, PyAny>>) -> PyResult<optical::engine::Document> {
    let mut doc = optical::engine::Document::new(id, text).with_lang(lang.unwrap_or_else(|| "und".into()));
    if let Some(t) = title {
        doc = doc.with_title(t);
    }
    if let Some(v) = vector {
        doc = doc.with_vector(convert::vector(&v)?);
    }
    Ok(doc)
}

/// A BERT-family encoder from a model directory (config.json, model.safetensors,
/// tokenizer.json, optical.json). `optical.Encoder` wraps it and returns numpy arrays.
#[pyclass(module = "optical._optical", frozen)]
pub struct Encoder {
    encoder: Arc<RustEncoder>,
}

#[pymethods]
impl Encoder {
    #[new]
    fn new(py: Python<'_>, model_dir: PathBuf) -> PyResult<Encoder> {
        let encoder = py.detach(|| load_encoder(&model_dir)).py_err()?;
        Ok(Encoder { encoder: Arc::new(encoder) })
    }

    /// Output dimension.
    #[getter]
    fn dim(&self) -> usize {
        self.encoder.dim()
    }

    /// Model name.
    #[getter]
    fn name(&self) -> String {
        self.encoder.info().name.clone()
    }

    /// Embedding space (a student shares its teacher's).
    #[getter]
    fn embedding_space(&self) -> String {
        self.encoder.info().embedding_space.clone()
    }

    /// Weights fingerprint.
    #[getter]
    fn fingerprint(&self) -> String {
        self.encoder.info().fingerprint.clone()
    }

    /// Encodes `texts` as `role` ("query" or "passage"); returns (little-endian f32 bytes,
    /// rows, dim), the rows unit-normalised as the index stores them.
    #[pyo3(signature = (texts, *, role="query"))]
    fn encode_raw<'py>(&self, py: Python<'py>, texts: Bound<'py, PyAny>, role: &str) -> PyResult<(Bound<'py, PyBytes>, usize, usize)> {
        let role = match role {
            "query" => Role::Query,
            "passage" | "document" => Role::Passage,
            other => return Err(PyValueError::new_err(format!("role must be \"query\" or \"passage\", not {other:?}"))),
        };
        let texts = convert::strings(&texts)?;
        let rows = py
            .detach(|| self.encoder.encode(&texts, role).map_err(optical::Error::from))
            .py_err()?;
        let dim = self.encoder.dim();
        let mut bytes = Vec::with_capacity(rows.len() * dim * 4);
        for r in &rows {
            for x in r {
                bytes.extend_from_slice(&x.to_le_bytes());
            }
        }
        Ok((PyBytes::new(py, &bytes), rows.len(), dim))
    }
}

/// Indexes a JSONL file or BEIR corpus into the index at `path` (created if absent) in one
/// commit, as `optical index` does. Returns the report as a dict (`added`, `replaced`,
/// `skipped`, `generation`, `docs`, `encoder`, `precision` — `f32` or `int8 (<kernel>)` —,
/// `seconds`, `passages_per_sec`).
#[pyfunction]
#[pyo3(signature = (path, input, *, model=None, lang="und", skip_invalid=false, dim=None))]
pub fn ingest<'py>(py: Python<'py>, path: PathBuf, input: PathBuf, model: Option<PathBuf>, lang: &str, skip_invalid: bool, dim: Option<usize>) -> PyResult<Bound<'py, PyDict>> {
    let lang = lang.to_string();
    let report = py
        .detach(|| optical::ingest::ingest(&path, &input, IngestOptions { lang, skip_invalid, dim, model, ..IngestOptions::default() }))
        .py_err()?;
    report_dict(py, &report)
}

fn report_dict<'py>(py: Python<'py>, r: &IngestReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("added", r.added)?;
    d.set_item("replaced", r.replaced)?;
    d.set_item("skipped", r.skipped.iter().map(|b| b.to_string()).collect::<Vec<_>>())?;
    d.set_item("generation", r.generation)?;
    d.set_item("docs", r.docs)?;
    d.set_item("encoder", r.encoder.clone())?;
    d.set_item("precision", r.precision.clone())?;
    d.set_item("seconds", r.elapsed.as_secs_f64())?;
    d.set_item("passages_per_sec", r.passages_per_sec())?;
    Ok(d)
}

/// Merges shard indexes (one configuration, disjoint keys) into a new index at `out`,
/// atomically: vectors are copied as stored and `out` appears complete or not at all
/// (`optical merge`). Returns `{"docs", "per_shard"}`.
#[pyfunction]
pub fn merge<'py>(py: Python<'py>, out: PathBuf, shards: Vec<PathBuf>) -> PyResult<Bound<'py, PyDict>> {
    let report = py.detach(|| optical::engine::merge_indexes(&out, &shards)).py_err()?;
    let d = PyDict::new(py);
    d.set_item("docs", report.docs)?;
    d.set_item("per_shard", report.per_shard)?;
    Ok(d)
}
