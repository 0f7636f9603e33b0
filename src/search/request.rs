//! What a search asks for and what it returns.

use std::time::Duration;

use crate::Result;
use crate::error::invalid;
use serde::{Deserialize, Serialize};

use super::fusion::Fusion;
use super::late::{Rerank, RerankChoice};

/// Which rankings a search runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// BM25 only (no encoder, no vectors needed).
    Bm25,
    /// Exhaustive dense search only: finds documents that share no word with the query.
    Dense,
    /// BM25 top-N ∪ dense top-N, all scored exactly by the dense model, then fused.
    #[default]
    Hybrid,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Bm25 => "bm25",
            Mode::Dense => "dense",
            Mode::Hybrid => "hybrid",
        })
    }
}

impl std::str::FromStr for Mode {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Mode> {
        match s {
            "bm25" => Ok(Mode::Bm25),
            "dense" => Ok(Mode::Dense),
            "hybrid" => Ok(Mode::Hybrid),
            other => invalid!("unknown search mode `{other}` (expected bm25, dense or hybrid)"),
        }
    }
}

/// Default number of BM25 candidates a hybrid search fuses.
pub const DEFAULT_SPARSE_DEPTH: usize = 100;
/// Default number of dense candidates a hybrid search fuses.
pub const DEFAULT_DENSE_DEPTH: usize = 100;
/// Default over-fetch of the int8 first pass: `factor × wanted` rows are rescored on f32.
pub const DEFAULT_RESCORE_FACTOR: usize = 4;

/// One search. Build with [`SearchRequest::new`] and the `with_*` methods.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchRequest {
    /// Query text (analysed for BM25, encoded for dense search).
    pub query: String,
    /// Language of the query (ISO 639-3): selects a per-language query encoder when the
    /// [`Searcher`](super::Searcher) has one for it, else its default encoder.
    pub query_lang: Option<String>,
    /// A ready query vector: skips query encoding (it must come from a compatible encoder).
    pub query_vector: Option<Vec<f32>>,
    /// Number of results.
    pub k: usize,
    /// Which rankings run.
    pub mode: Mode,
    /// BM25 candidates in hybrid mode (at least `k` are taken).
    pub sparse_depth: usize,
    /// Dense candidates in hybrid mode (at least `k` are taken).
    pub dense_depth: usize,
    /// The int8 pass keeps `rescore_factor × k` rows (in hybrid mode at least `dense_depth`)
    /// for exact rescoring on f32.
    pub rescore_factor: usize,
    /// How hybrid mode combines the two rankings.
    pub fusion: Fusion,
    /// Only documents whose `lang` is this.
    pub lang: Option<String>,
    /// Attach an [`Explain`] to every hit.
    pub explain: bool,
    /// The reranking stage after retrieval (and fusion), dense and hybrid modes, cross-lingual
    /// queries: by default ([`RerankChoice::Auto`]) MaxSim on the index's stored token codes
    /// where it has them. An index without codes needs its document encoder for a stage
    /// ([`Searcher::with_document_encoder`](super::Searcher::with_document_encoder)).
    pub rerank: RerankChoice,
}

impl SearchRequest {
    /// A hybrid top-10 search for `query` with the default depths, fusion and rerank choice.
    pub fn new(query: impl Into<String>) -> SearchRequest {
        SearchRequest {
            query: query.into(),
            query_lang: None,
            query_vector: None,
            k: 10,
            mode: Mode::Hybrid,
            sparse_depth: DEFAULT_SPARSE_DEPTH,
            dense_depth: DEFAULT_DENSE_DEPTH,
            rescore_factor: DEFAULT_RESCORE_FACTOR,
            fusion: Fusion::default(),
            lang: None,
            explain: false,
            rerank: RerankChoice::Auto,
        }
    }

    /// Sets the number of results.
    pub fn with_k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }

    /// Sets the mode.
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the query language (selects the query encoder).
    pub fn with_query_lang(mut self, lang: impl Into<String>) -> Self {
        self.query_lang = Some(lang.into());
        self
    }

    /// Uses a ready query vector instead of encoding the query text.
    pub fn with_query_vector(mut self, vector: Vec<f32>) -> Self {
        self.query_vector = Some(vector);
        self
    }

    /// Sets the fusion.
    pub fn with_fusion(mut self, fusion: Fusion) -> Self {
        self.fusion = fusion;
        self
    }

    /// Keeps only documents of language `lang`.
    pub fn with_lang_filter(mut self, lang: impl Into<String>) -> Self {
        self.lang = Some(lang.into());
        self
    }

    /// Asks for per-hit explanations.
    pub fn with_explain(mut self, explain: bool) -> Self {
        self.explain = explain;
        self
    }

    /// Reranks the top of the results ([`Rerank`]).
    pub fn with_rerank(mut self, rerank: Rerank) -> Self {
        self.rerank = RerankChoice::On(rerank);
        self
    }

    /// Sets the rerank choice ([`RerankChoice`]: auto, none or a stage).
    pub fn with_rerank_choice(mut self, choice: RerankChoice) -> Self {
        self.rerank = choice;
        self
    }

    /// The rerank stage this request runs on an index that stores token codes or not
    /// (`has_codes`): none in bm25 mode unless asked for (and then [`SearchRequest::validate`]
    /// refuses it).
    pub fn rerank_stage(&self, has_codes: bool) -> Option<Rerank> {
        match (self.mode, self.rerank) {
            (Mode::Bm25, RerankChoice::Auto) => None,
            (_, choice) => choice.stage(has_codes),
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.rescore_factor == 0 {
            invalid!("rescore_factor must be at least 1");
        }
        self.fusion.validate()?;
        if let RerankChoice::On(r) = &self.rerank {
            if self.mode == Mode::Bm25 {
                invalid!("rerank {r} needs the query's token states: it runs in dense and hybrid mode, not bm25");
            }
            r.validate()?;
        }
        Ok(())
    }
}

/// Why a hit ranks where it does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Explain {
    /// Rank in the BM25 candidate list (from 1), if BM25 ran and found the document.
    pub bm25_rank: Option<usize>,
    /// BM25 score, when `bm25_rank` is set.
    pub bm25_score: Option<f32>,
    /// Rank among the dense-scored candidates (from 1), if dense scoring ran.
    pub dense_rank: Option<usize>,
    /// Exact dense score (dot product of unit vectors, i.e. cosine).
    pub dense_score: Option<f32>,
    /// The fused score (hybrid), or the score of the single ranking that ran.
    pub fused_score: f32,
    /// The late-interaction (MaxSim) score, when the hit was among those a rerank stage scored
    /// (the hit's score is then the reranked one, `fused_score` the score before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxsim_score: Option<f32>,
}

/// One result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// External key.
    pub key: String,
    /// Internal id.
    pub id: u64,
    /// The score the ranking used: fused (hybrid), BM25 or dense.
    pub score: f32,
    /// Present when the request asked for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<Explain>,
}

/// Wall time of each stage of one search (zero for stages that did not run).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StageTimings {
    /// Query encoding: the vector, and the query's token states when a rerank stage runs.
    pub encode: Duration,
    /// BM25 candidate generation.
    pub bm25: Duration,
    /// The exhaustive dense first pass (int8 scan, or f32 scan on f32-only indexes).
    pub dense_scan: Duration,
    /// Exact dense scoring of the candidates.
    pub rerank: Duration,
    /// Fusion and result assembly (keys, explanations).
    pub fusion: Duration,
    /// The rerank stage: the candidates' token rows (decoded from stored codes, or encoded from
    /// their text), MaxSim and the mix (the query's token states count as `encode`).
    pub late_interaction: Duration,
    /// Everything.
    pub total: Duration,
}

/// The results of one search.
#[derive(Clone, Debug)]
pub struct SearchResults {
    /// Best first.
    pub hits: Vec<SearchHit>,
    /// The commit generation searched.
    pub generation: u64,
    /// The mode that ran.
    pub mode: Mode,
    /// Per-stage wall time.
    pub timings: StageTimings,
}
