//! Late-interaction reranking (`--rerank maxsim:DEPTH:WEIGHT`): the top of a ranking reordered
//! by mixing its scores with a MaxSim score between the query's token states and each passage's
//! token states (ColBERT's score: the mean over the query's content tokens of the best cosine to
//! any content token of the passage).
//!
//! Why it adds to hybrid search: a distilled student's token states were pulled toward the
//! document encoder's token states of the English translation (the token-level OT of
//! distillation), so matching token by token sees alignments that the pooled query vector
//! averages away. An index whose document encoder has a token codebook stores each passage's
//! token states as codes ([`crate::encoder::codebook`]: 98 bytes a token with the shipped 2-bit
//! codebook, instead of 1,536), and the stage decodes them: a few milliseconds for 30 passages,
//! so it runs by default
//! ([`RerankChoice::Auto`]). Without stored codes the index's document encoder computes the
//! states at query time, about 100 ms for 20 passages (docs/search.md, "Late interaction").

use std::fmt;
use std::str::FromStr;

use super::fusion::mean_sd;
use crate::Result;
use crate::encoder::codebook::{Codebook, unit_content_rows};
use crate::engine::{StoredDoc, passage_text};
use crate::encoder::{Encoder, Role, TokenStates};
use crate::error::invalid;

/// Passages reranked when the spec names no depth (with the weight below, the best of depths
/// 20 / 30 / 50 on AfriQA dev with the shipped 2-bit codes; docs/search.md, "Stored token codes").
pub const DEFAULT_RERANK_DEPTH: usize = 30;
/// Weight of the MaxSim z-score when the spec names none (chosen on AfriQA dev; docs/search.md).
pub const DEFAULT_RERANK_WEIGHT: f32 = 0.4;

/// Whether a search reranks its top by late interaction.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum RerankChoice {
    /// `maxsim` with the default depth and weight where the index stores token codes (the stage
    /// then reads them: about a millisecond), no stage where it does not.
    #[default]
    Auto,
    /// No rerank stage.
    Off,
    /// This stage; on an index without token codes it encodes the candidates with the index's
    /// document encoder.
    On(Rerank),
}

impl RerankChoice {
    /// The stage a search of an index runs, `has_codes` whether the index stores token codes.
    pub fn stage(self, has_codes: bool) -> Option<Rerank> {
        match self {
            RerankChoice::Auto if has_codes => Some(Rerank::default()),
            RerankChoice::Auto | RerankChoice::Off => None,
            RerankChoice::On(r) => Some(r),
        }
    }
}

impl fmt::Display for RerankChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RerankChoice::Auto => f.write_str("auto"),
            RerankChoice::Off => f.write_str("none"),
            RerankChoice::On(r) => r.fmt(f),
        }
    }
}

impl FromStr for RerankChoice {
    type Err = crate::Error;
    /// `auto`, `none` (or `off`), or a [`Rerank`] spec.
    fn from_str(s: &str) -> Result<RerankChoice> {
        match s {
            "auto" => Ok(RerankChoice::Auto),
            "none" | "off" => Ok(RerankChoice::Off),
            spec => match spec.parse() {
                Ok(r) => Ok(RerankChoice::On(r)),
                Err(e) => invalid!("{e} (or auto, none)"),
            },
        }
    }
}

/// A reranking stage after retrieval and fusion, for cross-lingual queries (a query in the
/// documents' language keeps the fused order: there the stage lowered MasakhaNEWS dev).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rerank {
    /// The top `depth` hits reordered by `(1 − weight)·z(score) + weight·z(MaxSim)`, z-scores
    /// taken within those `depth` hits; the hits below keep their place and score.
    MaxSim { depth: usize, weight: f32 },
}

impl Default for Rerank {
    fn default() -> Self {
        Rerank::MaxSim { depth: DEFAULT_RERANK_DEPTH, weight: DEFAULT_RERANK_WEIGHT }
    }
}

impl Rerank {
    pub(crate) fn validate(&self) -> Result<()> {
        let Rerank::MaxSim { depth, weight } = *self;
        if depth == 0 {
            invalid!("rerank maxsim: the depth must be at least 1");
        }
        if !(0.0..=1.0).contains(&weight) {
            invalid!("rerank maxsim: the weight must be within [0, 1], got {weight}");
        }
        Ok(())
    }
}

impl fmt::Display for Rerank {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Rerank::MaxSim { depth, weight } = self;
        write!(f, "maxsim:{depth}:{weight}")
    }
}

impl FromStr for Rerank {
    type Err = crate::Error;
    /// `maxsim`, `maxsim:DEPTH` or `maxsim:DEPTH:WEIGHT`.
    fn from_str(s: &str) -> Result<Rerank> {
        let mut parts = s.split(':');
        let name = parts.next().unwrap_or_default();
        if name != "maxsim" {
            invalid!("unknown rerank `{s}` (expected maxsim[:DEPTH[:WEIGHT]])");
        }
        let depth = match parts.next() {
            Some(d) => match d.parse() {
                Ok(d) => d,
                Err(_) => invalid!("rerank `{s}`: depth `{d}` is not a whole number"),
            },
            None => DEFAULT_RERANK_DEPTH,
        };
        let weight = match parts.next() {
            Some(w) => match w.parse() {
                Ok(w) => w,
                Err(_) => invalid!("rerank `{s}`: weight `{w}` is not a number"),
            },
            None => DEFAULT_RERANK_WEIGHT,
        };
        if parts.next().is_some() {
            invalid!("rerank `{s}`: too many fields (expected maxsim[:DEPTH[:WEIGHT]])");
        }
        let r = Rerank::MaxSim { depth, weight };
        r.validate()?;
        Ok(r)
    }
}

/// The content tokens' states of one text (no special or prefix tokens), each scaled to unit
/// length, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenRows {
    rows: Vec<f32>,
    dim: usize,
}

impl TokenRows {
    /// Rows of width `dim`, one after the other (unit length for MaxSim to be a cosine).
    pub fn new(rows: Vec<f32>, dim: usize) -> TokenRows {
        TokenRows { rows, dim }
    }

    /// The content rows of `states`, unit length.
    pub fn from_states(states: &TokenStates) -> TokenRows {
        TokenRows::of_content(&states.states, &states.content, states.dim)
    }

    /// The rows of `states` (one `dim`-wide row per token) that `content` marks, unit length.
    fn of_content(states: &[f32], content: &[bool], dim: usize) -> TokenRows {
        TokenRows { rows: unit_content_rows(states, content, dim), dim }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len().checked_div(self.dim).unwrap_or(0)
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows, one after the other.
    pub fn as_flat(&self) -> &[f32] {
        &self.rows
    }
}

/// The query's token rows for the stage: those of the query as written, and those of its
/// English rendering ([`crate::translate::rendered_query`]) when its language has a table.
#[derive(Clone, Debug)]
pub struct QueryRows {
    /// The query as written.
    pub written: TokenRows,
    /// Its word-by-word English rendering, with the weight its MaxSim is mixed in at.
    pub rendered: Option<(TokenRows, f32)>,
}

/// A query's word-by-word English rendering ([`crate::translate::rendered_query`]), read by the
/// stage after the query as written: its MaxSim is mixed into the stage's scores (z-scores
/// within the top, as the first mix) at `weight`: `(1 − w)·z(stage score) + w·z(MaxSim)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendering {
    /// The rendered text.
    pub text: String,
    /// The weight of its MaxSim in the stage's second mix (0 to 1).
    pub weight: f32,
}

/// The default [`Rendering::weight`]. The student reads English better than Hausa or Zulu (the
/// English-question ceiling, docs/search.md), and a rendering gives it English words in the
/// query's order. Chosen on the AfriQA dev sets (docs/search.md, "A second reading of the query").
pub const DEFAULT_RENDERING_WEIGHT: f32 = 0.3;

/// The query's token rows (`written`, and `rendered`'s when given), encoded as queries in one call.
pub fn query_rows(encoder: &Encoder, written: &str, rendered: Option<&Rendering>) -> Result<QueryRows> {
    let (_, rows) = query_vector_and_rows(encoder, written, written, rendered)?;
    Ok(rows)
}

/// The pooled vector of `dense_text` and the query's token rows (of `written`, and of `rendered`
/// when given), all encoded as queries in one call (one pass for texts that are the same). A
/// cross-lingual query needs them all — its vector from the text with its gloss, its token
/// states from the text as written (docs/search.md, "Late interaction") and from its rendering —
/// and one batch of the first two took 8.4–8.7 ms p50 against 9.8–10.5 for two calls in int8 on
/// 2 cores (`cargo bench --bench search_latency`, README).
pub fn query_vector_and_rows(encoder: &Encoder, dense_text: &str, written: &str, rendered: Option<&Rendering>) -> Result<(Vec<f32>, QueryRows)> {
    let mut texts = vec![dense_text];
    for text in [Some(written), rendered.map(|r| r.text.as_str())].into_iter().flatten() {
        if !texts.contains(&text) {
            texts.push(text);
        }
    }
    let tokens = encoder.tokenize(&texts, Role::Query).map_err(crate::Error::encoder)?;
    let encoded = encoder.encode_tokens_with_states(&tokens).map_err(crate::Error::encoder)?;
    if encoded.len() != texts.len() {
        return Err(crate::Error::Encoder { message: format!("the encoder returned {} results for {} query texts", encoded.len(), texts.len()) });
    }
    let dim = encoder.info().dim;
    let rows_of = |text: &str| {
        let i = texts.iter().position(|t| *t == text).expect("every text is encoded");
        TokenRows::of_content(&encoded[i].1, &tokens[i].content, dim)
    };
    let rows = QueryRows { written: rows_of(written), rendered: rendered.map(|r| (rows_of(&r.text), r.weight)) };
    Ok((encoded[0].0.clone(), rows))
}

/// Each passage's content-token rows, encoded by `encoder` as passages (one batch).
fn passage_rows<S: AsRef<str>>(encoder: &Encoder, texts: &[S]) -> Result<Vec<TokenRows>> {
    let states = encoder.token_states(texts, Role::Passage).map_err(crate::Error::encoder)?;
    Ok(states.iter().map(TokenRows::from_states).collect())
}

/// A candidate passage as the stage reads it from the index.
#[derive(Clone, Debug, Default)]
pub struct Candidate {
    /// The text the document encoder reads ([`crate::engine::passage_text`]).
    pub text: String,
    /// Its stored token codes, when the index keeps them.
    pub token_codes: Option<Vec<u8>>,
}

impl Candidate {
    /// A stored document as a candidate.
    pub fn from_stored(doc: StoredDoc) -> Candidate {
        Candidate { text: passage_text(&doc.title, &doc.body), token_codes: doc.token_codes }
    }
}

/// Where the stage gets the candidates' token rows: decoded from their stored codes with the
/// index's codebook, else encoded from their text by the index's document encoder.
#[derive(Clone, Copy, Default)]
pub struct PassageRows<'a> {
    /// The index's token codebook.
    pub codebook: Option<&'a Codebook>,
    /// The index's document encoder.
    pub encoder: Option<&'a Encoder>,
}

impl PassageRows<'_> {
    /// The MaxSim score of each candidate for each of `queries` (`scores[q][c]`): its stored
    /// codes decoded where it has some (and there is a codebook), once for all the queries; the
    /// others' rows encoded in one batch.
    fn maxsim_scores(&self, queries: &[&TokenRows], candidates: &[Candidate]) -> Result<Vec<Vec<f32>>> {
        let mut scores = vec![vec![0f32; candidates.len()]; queries.len()];
        let mut score = |c: usize, rows: &TokenRows| {
            for (query, s) in queries.iter().zip(scores.iter_mut()) {
                s[c] = maxsim(query, rows);
            }
        };
        let mut missing = Vec::new();
        // One buffer for every passage: a fresh 190 KB one each was mostly page faults.
        let mut rows = TokenRows::new(Vec::new(), self.codebook.map_or(0, Codebook::dim));
        for (i, c) in candidates.iter().enumerate() {
            match (self.codebook, &c.token_codes) {
                (Some(book), Some(codes)) => {
                    book.decode_into(codes, &mut rows.rows)?;
                    score(i, &rows);
                }
                _ => missing.push(i),
            }
        }
        if !missing.is_empty() {
            let Some(encoder) = self.encoder else {
                invalid!("{} of the {} passages to rerank have no stored token codes, and no document encoder was given to encode them", missing.len(), candidates.len())
            };
            let texts: Vec<&str> = missing.iter().map(|&i| candidates[i].text.as_str()).collect();
            for (i, rows) in missing.into_iter().zip(passage_rows(encoder, &texts)?) {
                score(i, &rows);
            }
        }
        Ok(scores)
    }
}

/// The MaxSim score of each passage for `query`: the query's token states from `query_encoder`,
/// the passages' from `doc_encoder` (one batch).
pub fn maxsim_scores<S: AsRef<str>>(query_encoder: &Encoder, doc_encoder: &Encoder, query: &str, passages: &[S]) -> Result<Vec<f32>> {
    let query = query_rows(query_encoder, query, None)?.written;
    Ok(passage_rows(doc_encoder, passages)?.iter().map(|p| maxsim(&query, p)).collect())
}

/// `ranking` (best first) with its top `candidates.len()` entries — `candidates[i]` the stored
/// passage of `ranking[i]` — reordered for the query whose token rows are `query`: by the written
/// query's MaxSim at `weight` ([`mix_top`]), then, when the query has a rendering, by its MaxSim
/// at the rendering's weight (a second [`mix_top`] over the first's top); and the written
/// query's MaxSim scores of that top in `ranking`'s order. `rows` turns the candidates into
/// token rows.
pub fn rerank_top<T: Clone>(
    query: &QueryRows,
    rows: PassageRows<'_>,
    ranking: &[(T, f32)],
    candidates: &[Candidate],
    weight: f32,
) -> Result<(Vec<(T, f32)>, Vec<f32>)> {
    assert!(candidates.len() <= ranking.len(), "{} candidates for a ranking of {}", candidates.len(), ranking.len());
    let queries: Vec<&TokenRows> = std::iter::once(&query.written).chain(query.rendered.as_ref().map(|(rows, _)| rows)).collect();
    let mut scores = rows.maxsim_scores(&queries, candidates)?.into_iter();
    let written = scores.next().expect("the written query is scored");
    let (Some(rendered), Some((_, rendered_weight))) = (scores.next(), &query.rendered) else {
        return Ok((mix_top(ranking, &written, weight), written));
    };
    // Mixed by position, so that the second mix can find each entry's rendering score.
    let positions: Vec<(usize, f32)> = ranking.iter().enumerate().map(|(i, h)| (i, h.1)).collect();
    let first = mix_top(&positions, &written, weight);
    let rendered_in_order: Vec<f32> = first[..candidates.len()].iter().map(|&(i, _)| rendered[i]).collect();
    let second = mix_top(&first, &rendered_in_order, *rendered_weight);
    Ok((second.into_iter().map(|(i, s)| (ranking[i].0.clone(), s)).collect(), written))
}

/// ColBERT's MaxSim: the mean over the query rows of the best cosine to any passage row (0 when
/// either side has no row). The dot products are one matrix product (gemm): a plain loop's f32
/// sums do not vectorise, and made the stage cost ≈ 0.5 ms a passage.
pub fn maxsim(query: &TokenRows, passage: &TokenRows) -> f32 {
    if query.is_empty() || passage.is_empty() {
        return 0.0;
    }
    assert_eq!(query.dim, passage.dim, "query and passage rows of different widths");
    let (m, n, dim) = (query.len(), passage.len(), query.dim);
    let mut dots = vec![0f32; m * n];
    // SAFETY: `dots` holds m × n values (row stride n); the query rows are m × dim (row stride
    // dim), the passage rows n × dim read transposed (column stride dim); gemm writes only
    // inside `dots`.
    unsafe {
        gemm::gemm(
            m, n, dim,
            dots.as_mut_ptr(), 1, n as isize, false,
            query.rows.as_ptr(), 1, dim as isize,
            passage.rows.as_ptr(), dim as isize, 1,
            0.0, 1.0, false, false, false, gemm::Parallelism::None,
        );
    }
    dots.chunks_exact(n).map(|row| row.iter().copied().fold(f32::MIN, f32::max)).sum::<f32>() / m as f32
}

/// `ranking` (best first) with its top `late.len()` entries reordered by
/// `(1 − weight)·z(score) + weight·z(late)` — `late[i]` the MaxSim score of `ranking[i]`, z-scores
/// within that top (a constant list has z-scores 0) — and given those mixed scores. The rest keep
/// their order after them, scored below the lowest mixed score by 1 plus their distance from the
/// last reranked entry (in that top's standard deviations of the first score), so that a reader
/// which sorts by score (a TREC run) sees the same order. Ties keep the ranking's order.
pub fn mix_top<T: Clone>(ranking: &[(T, f32)], late: &[f32], weight: f32) -> Vec<(T, f32)> {
    let n = late.len().min(ranking.len());
    if n == 0 {
        return ranking.to_vec();
    }
    let (mean, sd) = mean_sd(ranking[..n].iter().map(|h| h.1));
    let z = |v: f32| if sd > 0.0 { ((f64::from(v) - mean) / sd) as f32 } else { 0.0 };
    let (late_mean, late_sd) = mean_sd(late[..n].iter().copied());
    let z_late = |v: f32| if late_sd > 0.0 { ((f64::from(v) - late_mean) / late_sd) as f32 } else { 0.0 };
    let mut top: Vec<(T, f32)> = ranking[..n].iter().zip(late).map(|(h, &l)| (h.0.clone(), (1.0 - weight) * z(h.1) + weight * z_late(l))).collect();
    // A stable sort: equal mixed scores keep the first ranking's order.
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (last, lowest) = (ranking[n - 1].1, top[n - 1].1);
    let scale = if sd > 0.0 { sd as f32 } else { 1.0 };
    top.extend(ranking[n..].iter().map(|h| (h.0.clone(), lowest - 1.0 - (last - h.1) / scale)));
    top
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(v: &[&[f32]]) -> TokenRows {
        TokenRows { rows: v.iter().flat_map(|r| r.iter().copied()).collect(), dim: v[0].len() }
    }

    #[test]
    fn maxsim_is_the_mean_of_each_query_rows_best_match() {
        let q = rows(&[&[1.0, 0.0], &[0.0, 1.0]]);
        let p = rows(&[&[1.0, 0.0], &[0.6, 0.8]]);
        // Row 1's best is 1.0 (first passage row), row 2's is 0.8 (second).
        assert!((maxsim(&q, &p) - 0.9).abs() < 1e-6);
        assert_eq!(maxsim(&q, &TokenRows { rows: Vec::new(), dim: 2 }), 0.0);
    }

    #[test]
    fn mix_top_reorders_the_top_only_and_weight_zero_keeps_it() {
        let ranking = vec![("a", 3.0), ("b", 2.0), ("c", 1.0), ("d", 0.5)];
        let late = [0.1, 0.2, 0.9];
        fn keys(r: Vec<(&'static str, f32)>) -> Vec<&'static str> {
            r.into_iter().map(|h| h.0).collect()
        }
        assert_eq!(keys(mix_top(&ranking, &late, 0.0)), ["a", "b", "c", "d"]);
        assert_eq!(keys(mix_top(&ranking, &late, 1.0)), ["c", "b", "a", "d"]);
        // z(first) = (1.22, 0, −1.22), z(late) = (−0.93, −0.46, 1.39): at 0.5 a 0.15, b −0.23, c 0.09.
        assert_eq!(keys(mix_top(&ranking, &late, 0.5)), ["a", "c", "b", "d"]);
        // The hit below the reranked top stays below it in score too: z-scores of the top's
        // first scores use its sd 0.816; d sits (1 − 0.5) / 0.816 below c's level, 1 below b.
        let mixed = mix_top(&ranking, &late, 0.5);
        assert!((mixed[3].1 - (mixed[2].1 - 1.0 - 0.5 / 0.8165)).abs() < 1e-3, "{mixed:?}");
        // An empty top changes nothing.
        assert_eq!(mix_top(&ranking, &[], 0.5), ranking);
    }

    #[test]
    fn the_rendering_reorders_the_top_after_the_written_query_at_its_weight() {
        let dim = 8;
        let unit = |i: usize| -> Vec<f32> { (0..dim).map(|j| if j == i { 1.0 } else { 0.0 }).collect() };
        let all: Vec<f32> = (0..dim).flat_map(unit).collect();
        let options = crate::encoder::codebook::FitOptions { centroids: dim, bits: 8, iterations: 2, seed: 0 };
        let book = Codebook::fit(&all, dim, &options, "fp", |_, _| {}).unwrap();
        // Passage a holds the written query's token, c the rendering's, b neither.
        let candidates: Vec<Candidate> = (0..3).map(|i| Candidate { text: String::new(), token_codes: Some(book.encode(&unit(i))) }).collect();
        let ranking = vec![("a", 3.0), ("b", 2.0), ("c", 1.0), ("d", 0.5)];
        let passages = PassageRows { codebook: Some(&book), encoder: None };
        let order = |rendered: Option<(TokenRows, f32)>| {
            let query = QueryRows { written: TokenRows::new(unit(0), dim), rendered };
            let (ranked, scores) = rerank_top(&query, passages, &ranking, &candidates, 0.3).unwrap();
            (ranked.into_iter().map(|h| h.0).collect::<Vec<_>>(), scores)
        };
        let (alone, written_scores) = order(None);
        assert_eq!(alone, ["a", "b", "c", "d"]);
        let (rendered, scores) = order(Some((TokenRows::new(unit(2), dim), 0.9)));
        assert_eq!(rendered, ["c", "a", "b", "d"], "the rendering's match comes first at weight 0.9");
        assert_eq!(scores, written_scores, "the stage reports the written query's MaxSim");
        assert!((written_scores[0] - 1.0).abs() < 1e-3 && written_scores[2].abs() < 1e-3, "{written_scores:?}");
        assert_eq!(order(Some((TokenRows::new(unit(2), dim), 0.0))).0, alone, "weight 0 keeps the written query's order");
    }

    #[test]
    fn rerank_specs_parse_with_defaults_and_reject_bad_fields() {
        assert_eq!("maxsim".parse::<Rerank>().unwrap(), Rerank::MaxSim { depth: DEFAULT_RERANK_DEPTH, weight: DEFAULT_RERANK_WEIGHT });
        assert_eq!("maxsim:50:0.4".parse::<Rerank>().unwrap(), Rerank::MaxSim { depth: 50, weight: 0.4 });
        let r = Rerank::MaxSim { depth: 30, weight: 0.25 };
        assert_eq!(r.to_string().parse::<Rerank>().unwrap(), r);
        for (bad, says) in [("colbert", "unknown rerank"), ("maxsim:x", "depth `x`"), ("maxsim:0", "at least 1"), ("maxsim:5:1.5", "within [0, 1]"), ("maxsim:5:0.5:1", "too many")] {
            let e = bad.parse::<Rerank>().unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
