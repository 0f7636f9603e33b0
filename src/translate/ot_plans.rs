//! Translation tables from the optimal-transport plans of distillation: Optical's own alignments.
//!
//! Distillation moves a student's token states onto a teacher's through an entropic OT plan
//! between the tokens of a sentence and the tokens of its English translation
//! ([`crate::distill::ot`]). The plan is a soft word alignment: `P[j, k]` is the mass token `j` of
//! the foreign side sends to token `k` of the English side. Summing the plans of a bitext over the
//! word pairs they connect gives co-alignment counts `c(f, e)`, and `p(e | f) = c(f, e) / Σ_e c(f, e)`
//! is a translation table like IBM Model 1's ([`super::model1`]), learned from the encoders'
//! contextual states instead of co-occurrence statistics.
//!
//! Subword pieces are merged to the words a translated query uses — the foreign side as
//! [`source_words_analyzer`] words, the English side stemmed — by their byte spans, so the table's words
//! are exactly the terms a translated query looks up. Tokens that belong to no analyzer word
//! (punctuation, special and prefix tokens) take no part in the plan, so they soak up no mass.
use std::collections::HashMap;

use anyhow::{Result, bail, ensure};
use burn::prelude::*;
use tantivy::tokenizer::Language;

use super::Vocab;
use super::table::{Pruning, TranslationTable};
use crate::distill::BitextPair;
use crate::distill::ot::{SinkhornSettings, cosine_cost, log_marginals, sinkhorn_log};
use crate::encoder::{Encoder, Role, TokenStates, to_vec};
use super::gloss::english_written_forms;
use super::words::source_words_analyzer;
use crate::engine::text::{analyze_spans, stemmed_analyzer};

/// Settings of a table built from OT plans.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OtPlanOptions {
    /// The entropic solver (the distillation default: ε 0.01, 50 iterations, as the shipped
    /// OT student was trained with).
    pub sinkhorn: SinkhornSettings,
    /// Sentence pairs per forward pass and Sinkhorn batch.
    pub batch_size: usize,
    /// Words seen fewer times than this on the foreign side get no entry.
    pub min_count: usize,
    /// Pruning applied to the finished table.
    pub pruning: Pruning,
}

impl Default for OtPlanOptions {
    fn default() -> Self {
        OtPlanOptions {
            sinkhorn: SinkhornSettings { epsilon: 0.01, iterations: 50, centre: false },
            batch_size: 32,
            min_count: 2,
            pruning: Pruning::default(),
        }
    }
}

/// The content tokens of one side of a pair that fall inside an analyzer word: their states and
/// the id of the word each belongs to.
struct WordTokens {
    rows: Vec<usize>,
    word_ids: Vec<u32>,
}

/// Builds `p(e | f)` from the OT plans between `student`'s states of each foreign sentence
/// (encoded as a query, the role the student serves) and `teacher`'s states of its English
/// translation. `on_progress` is called with the number of pairs done after each batch.
pub fn train_ot_plans(
    pairs: &[BitextPair],
    source: &str,
    student: &Encoder,
    teacher: &Encoder,
    options: OtPlanOptions,
    mut on_progress: impl FnMut(usize),
) -> Result<TranslationTable> {
    ensure!(options.batch_size > 0, "the batch size must be at least 1");
    ensure!(
        student.dim() == teacher.dim(),
        "student {} has {}-d states and teacher {} has {}-d: OT plans need one space",
        student.dir().display(),
        student.dim(),
        teacher.dir().display(),
        teacher.dim()
    );
    let mut counts = PlanCounts::default();
    let mut done = 0;
    for chunk in pairs.chunks(options.batch_size) {
        let foreign: Vec<&str> = chunk.iter().map(|p| p.foreign.as_str()).collect();
        let english: Vec<&str> = chunk.iter().map(|p| p.english.as_str()).collect();
        let s_states = student.token_states(&foreign, Role::Query)?;
        let t_states = teacher.token_states(&english, Role::Query)?;
        counts.add_batch(&foreign, &english, &s_states, &t_states, options.sinkhorn, student.device())?;
        done += chunk.len();
        on_progress(done);
    }
    let mut table = counts.into_table(source, options)?;
    table.set_written_forms(english_written_forms(pairs.iter().map(|p| p.english.as_str())));
    Ok(table)
}

/// Co-alignment mass `c(f, e)` summed over plans, with the vocabularies it is keyed by.
#[derive(Default)]
struct PlanCounts {
    f_vocab: Vocab,
    e_vocab: Vocab,
    /// Pairs in which each foreign word occurs (for `min_count`).
    f_seen: Vec<usize>,
    mass: HashMap<(u32, u32), f32>,
}

impl PlanCounts {
    fn add_batch(
        &mut self,
        foreign: &[&str],
        english: &[&str],
        s_states: &[TokenStates],
        t_states: &[TokenStates],
        sinkhorn: SinkhornSettings,
        device: &Device,
    ) -> Result<()> {
        let mut words = source_words_analyzer();
        let mut stemmed = stemmed_analyzer(Language::English);
        let mut sides = Vec::new();
        for (i, (s, t)) in s_states.iter().zip(t_states).enumerate() {
            let f = word_tokens(s, foreign[i], &mut words, &mut self.f_vocab);
            let e = word_tokens(t, english[i], &mut stemmed, &mut self.e_vocab);
            let mut seen = f.word_ids.clone();
            seen.sort_unstable();
            seen.dedup();
            for w in seen {
                if self.f_seen.len() <= w as usize {
                    self.f_seen.resize(w as usize + 1, 0);
                }
                self.f_seen[w as usize] += 1;
            }
            if !f.rows.is_empty() && !e.rows.is_empty() {
                sides.push((i, f, e));
            }
        }
        if sides.is_empty() {
            return Ok(());
        }
        let dim = s_states[0].dim;
        let m = sides.iter().map(|(_, f, _)| f.rows.len()).max().unwrap_or(1);
        let n = sides.iter().map(|(_, _, e)| e.rows.len()).max().unwrap_or(1);
        let b = sides.len();
        let (student, s_mask) = pack(sides.iter().map(|(i, f, _)| (&s_states[*i], &f.rows)), b, m, dim, device);
        let (teacher, t_mask) = pack(sides.iter().map(|(i, _, e)| (&t_states[*i], &e.rows)), b, n, dim, device);
        let plan = sinkhorn_log(cosine_cost(student, teacher), log_marginals(s_mask), log_marginals(t_mask), sinkhorn);
        let plan = to_vec(plan)?;
        for (bi, (_, f, e)) in sides.iter().enumerate() {
            for (j, &fw) in f.word_ids.iter().enumerate() {
                let row = &plan[(bi * m + j) * n..(bi * m + j) * n + n];
                for (k, &ew) in e.word_ids.iter().enumerate() {
                    *self.mass.entry((fw, ew)).or_default() += row[k];
                }
            }
        }
        Ok(())
    }

    fn into_table(self, source: &str, options: OtPlanOptions) -> Result<TranslationTable> {
        if self.mass.is_empty() {
            bail!("no sentence pair has words on both sides");
        }
        let mut by_f: HashMap<u32, Vec<(u32, f32)>> = HashMap::new();
        for (&(fw, ew), &c) in &self.mass {
            if self.f_seen[fw as usize] >= options.min_count {
                by_f.entry(fw).or_default().push((ew, c));
            }
        }
        let mut table = TranslationTable::new(source, "eng", "ot-plans");
        for (fw, list) in by_f {
            let total: f32 = list.iter().map(|(_, c)| c).sum();
            if total <= 0.0 {
                continue;
            }
            let translations =
                list.into_iter().map(|(ew, c)| (self.e_vocab.words[ew as usize].clone(), c / total)).collect();
            table.insert(&self.f_vocab.words[fw as usize], translations);
        }
        table.prune(options.pruning);
        Ok(table)
    }
}

/// The tokens of `states` that lie inside an analyzer word of `text`, each with its word's id.
/// A token overlapping several words (rare: a piece spanning a hyphen) goes to the one it
/// overlaps most.
fn word_tokens(states: &TokenStates, text: &str, analyzer: &mut tantivy::tokenizer::TextAnalyzer, vocab: &mut Vocab) -> WordTokens {
    let words = analyze_spans(analyzer, text);
    let mut out = WordTokens { rows: Vec::new(), word_ids: Vec::new() };
    for (row, (&content, &(start, end))) in states.content.iter().zip(&states.spans).enumerate() {
        if !content || start >= end {
            continue;
        }
        let best = words
            .iter()
            .map(|(w, span)| (w, end.min(span.end).saturating_sub(start.max(span.start))))
            .filter(|(_, overlap)| *overlap > 0)
            .max_by_key(|(_, overlap)| *overlap);
        if let Some((word, _)) = best {
            out.rows.push(row);
            out.word_ids.push(vocab.id(word));
        }
    }
    out
}

/// Packs the chosen rows of each input into a zero-padded `[b, len, dim]` tensor and its 0/1 mask.
fn pack<'a>(
    items: impl Iterator<Item = (&'a TokenStates, &'a Vec<usize>)>,
    b: usize,
    len: usize,
    dim: usize,
    device: &Device,
) -> (Tensor<3>, Tensor<2>) {
    let mut states = vec![0f32; b * len * dim];
    let mut mask = vec![0f32; b * len];
    for (bi, (s, rows)) in items.enumerate() {
        for (j, &r) in rows.iter().enumerate() {
            let at = (bi * len + j) * dim;
            states[at..at + dim].copy_from_slice(s.row(r));
            mask[bi * len + j] = 1.0;
        }
    }
    (
        Tensor::from_data(TensorData::new(states, [b, len, dim]), device),
        Tensor::from_data(TensorData::new(mask, [b, len]), device),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Token states whose rows are the given vectors, every token content, with the given spans.
    fn states(rows: &[[f32; 3]], spans: &[(usize, usize)]) -> TokenStates {
        TokenStates {
            ids: vec![0; rows.len()],
            content: vec![true; rows.len()],
            spans: spans.to_vec(),
            states: rows.iter().flatten().copied().collect(),
            dim: 3,
        }
    }

    #[test]
    fn pieces_merge_into_the_analyzer_word_they_overlap() {
        // "Ruwa, gida": pieces "Ru" "wa" "," "gida"; the comma belongs to no word.
        let s = states(&[[1.0, 0.0, 0.0]; 4], &[(0, 2), (2, 4), (4, 5), (6, 10)]);
        let mut vocab = Vocab::default();
        let got = word_tokens(&s, "Ruwa, gida", &mut source_words_analyzer(), &mut vocab);
        assert_eq!(got.rows, vec![0, 1, 3]);
        assert_eq!(got.word_ids, vec![0, 0, 1]);
        assert_eq!(vocab.words, vec!["ruwa", "gida"]);
    }

    #[test]
    fn plans_translate_the_word_whose_states_match() {
        // Foreign states: ruwa = e0, gida = e1. English: "the" = e2, water = e0, houses = e1.
        // The plan sends ruwa's mass to "water" first (cost 0) and its remainder to "the".
        let foreign = ["ruwa gida", "gida ruwa"];
        let english = ["the water houses", "houses the water"];
        let s = [
            states(&[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], &[(0, 4), (5, 9)]),
            states(&[[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], &[(0, 4), (5, 9)]),
        ];
        let t = [
            states(&[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], &[(0, 3), (4, 9), (10, 16)]),
            states(&[[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], &[(0, 6), (7, 10), (11, 16)]),
        ];
        let mut counts = PlanCounts::default();
        let sinkhorn = SinkhornSettings { epsilon: 0.01, iterations: 200, centre: false };
        counts.add_batch(&foreign, &english, &s, &t, sinkhorn, &Device::default()).unwrap();
        let options = OtPlanOptions { pruning: Pruning { top_k: 5, cumulative: 1.0, min_prob: 0.0 }, ..OtPlanOptions::default() };
        let table = counts.into_table("hau", options).unwrap();
        assert_eq!(table.method, "ot-plans");
        let ruwa = table.get("ruwa").unwrap();
        assert_eq!(ruwa[0].0, "water");
        // Uniform marginals: each foreign word holds 1/2, each English word takes 1/3, so
        // p(water | ruwa) = (1/3) / (1/2) = 2/3 and the rest goes to "the".
        assert!((ruwa[0].1 - 2.0 / 3.0).abs() < 0.02, "{ruwa:?}");
        assert_eq!(table.get("gida").unwrap()[0].0, "hous", "English side is stemmed");
    }

    #[test]
    fn words_below_min_count_get_no_entry() {
        let s = [states(&[[1.0, 0.0, 0.0]], &[(0, 4)])];
        let t = [states(&[[1.0, 0.0, 0.0]], &[(0, 5)])];
        let mut counts = PlanCounts::default();
        counts.add_batch(&["ruwa"], &["water"], &s, &t, SinkhornSettings::default(), &Device::default()).unwrap();
        let table = counts.into_table("hau", OtPlanOptions::default()).unwrap();
        assert!(table.get("ruwa").is_none(), "seen once, min_count 2");
    }
}
