//! Python values ↔ the library's types: vectors (lists or numpy arrays), documents (dicts),
//! hits and reports (dicts).
use optical::engine::{Document, Snapshot, StoredDoc};
use optical::search::SearchHit;
use pyo3::exceptions::{PyKeyError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// A vector from a list of floats or anything with `tolist()` (a numpy array).
pub fn vector(obj: &Bound<'_, PyAny>) -> PyResult<Vec<f32>> {
    if obj.hasattr("tolist")? {
        return obj.call_method0("tolist")?.extract();
    }
    obj.extract().map_err(|_| PyTypeError::new_err("a vector must be a list of floats or a 1-D numpy array"))
}

/// A document from a dict with `id` (or BEIR's `_id`) and `text`, and optionally `title`,
/// `lang` (else `default_lang`) and `vector`.
pub fn document(d: &Bound<'_, PyAny>, default_lang: &str) -> PyResult<Document> {
    let d = d.cast::<PyDict>().map_err(|_| PyTypeError::new_err("a document must be a dict with \"id\" and \"text\""))?;
    let key: String = match d.get_item("id")?.or(d.get_item("_id")?) {
        Some(v) => v.extract()?,
        None => return Err(PyKeyError::new_err("document has no \"id\"")),
    };
    let text: String = match d.get_item("text")? {
        Some(v) => v.extract()?,
        None => return Err(PyKeyError::new_err(format!("document {key:?} has no \"text\""))),
    };
    let mut doc = Document::new(key, text).with_lang(default_lang);
    if let Some(t) = d.get_item("title")?.filter(|t| !t.is_none()) {
        doc = doc.with_title(t.extract::<String>()?);
    }
    if let Some(l) = d.get_item("lang")?.filter(|l| !l.is_none()) {
        doc = doc.with_lang(l.extract::<String>()?);
    }
    if let Some(v) = d.get_item("vector")?.filter(|v| !v.is_none()) {
        doc = doc.with_vector(vector(&v)?);
    }
    Ok(doc)
}

/// A stored document as a dict (`id`, `title`, `text`, `lang`, and `vector` when asked and the
/// index has one).
pub fn stored<'py>(py: Python<'py>, snap: &Snapshot, doc: StoredDoc, with_vector: bool) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("id", &doc.key)?;
    d.set_item("title", &doc.title)?;
    d.set_item("text", &doc.body)?;
    d.set_item("lang", &doc.lang)?;
    if with_vector {
        d.set_item("vector", snap.vector(doc.id))?;
    }
    Ok(d)
}

/// A hit as a dict: `rank`, `id` (the document's key), `score`, `title`, `text`, `lang`, and
/// `explain` (per leg: BM25 rank and score, dense rank and score, fused score) when present.
pub fn hit<'py>(py: Python<'py>, snap: &Snapshot, rank: usize, h: &SearchHit) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("rank", rank)?;
    d.set_item("id", &h.key)?;
    d.set_item("score", h.score)?;
    if let Some(doc) = snap.document(h.id).map_err(crate::errors::to_py)? {
        d.set_item("title", doc.title)?;
        d.set_item("text", doc.body)?;
        d.set_item("lang", doc.lang)?;
    }
    if let Some(e) = &h.explain {
        let x = PyDict::new(py);
        x.set_item("bm25_rank", e.bm25_rank)?;
        x.set_item("bm25_score", e.bm25_score)?;
        x.set_item("dense_rank", e.dense_rank)?;
        x.set_item("dense_score", e.dense_score)?;
        x.set_item("fused_score", e.fused_score)?;
        if let Some(m) = e.maxsim_score {
            x.set_item("maxsim_score", m)?;
        }
        d.set_item("explain", x)?;
    }
    Ok(d)
}

/// A list of strings from a list or a single string.
pub fn strings(obj: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if let Ok(s) = obj.extract::<String>() {
        return Ok(vec![s]);
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return l.iter().map(|x| x.extract::<String>()).collect();
    }
    obj.try_iter()?.map(|x| x?.extract::<String>()).collect()
}
