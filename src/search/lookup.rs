//! From internal ids to tantivy documents and back, through the postings of the indexed `id`
//! and `lang` fields: no stored-document reads, so resolving a page of dense hits costs a few
//! term lookups.

use std::collections::HashSet;

use anyhow::{Context, Result};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, DocSet, TERMINATED, Term};

use crate::engine::Snapshot;
use crate::text;

/// The address of each id's live document (`None` for ids with none in this snapshot).
pub fn addresses_of(snapshot: &Snapshot, ids: &[u64]) -> Result<Vec<Option<DocAddress>>> {
    let searcher = snapshot.searcher();
    let field = snapshot.fields().id;
    let mut out = Vec::with_capacity(ids.len());
    'ids: for &id in ids {
        let term = Term::from_field_u64(field, id);
        for (ord, seg) in searcher.segment_readers().iter().enumerate() {
            let inverted = seg
                .inverted_index(field)
                .context("opening the `id` postings")?;
            let Some(mut postings) = inverted
                .read_postings(&term, IndexRecordOption::Basic)
                .context("reading the `id` postings")?
            else {
                continue;
            };
            let mut doc = postings.doc();
            while doc != TERMINATED {
                if !seg.is_deleted(doc) {
                    out.push(Some(DocAddress::new(ord as u32, doc)));
                    continue 'ids;
                }
                doc = postings.advance();
            }
        }
        out.push(None);
    }
    Ok(out)
}

/// The external key of each id (`None` for ids with no live document in this snapshot).
pub fn keys_of(snapshot: &Snapshot, ids: &[u64]) -> Result<Vec<Option<String>>> {
    let addrs = addresses_of(snapshot, ids)?;
    let found: Vec<DocAddress> = addrs.iter().flatten().copied().collect();
    let mut keys = super::sparse::keys_at(snapshot, &found)?.into_iter();
    Ok(addrs
        .into_iter()
        .map(|a| a.and_then(|_| keys.next()))
        .collect())
}

/// Whether any live document is in language `lang`.
pub fn has_lang(snapshot: &Snapshot, lang: &str) -> Result<bool> {
    let mut found = false;
    for_each_live_with_lang(snapshot, lang, |_, _| {
        found = true;
        Ok(false)
    })?;
    Ok(found)
}

/// The internal ids of every live document whose language is `lang`.
pub fn ids_with_lang(snapshot: &Snapshot, lang: &str) -> Result<HashSet<u64>> {
    let mut out = HashSet::new();
    let mut ids = None;
    for_each_live_with_lang(snapshot, lang, |seg, doc| {
        // The `id` column of the segment being walked (segments come one after the other).
        let col = match &ids {
            Some((ord, col)) if *ord == seg.segment_id() => col,
            _ => {
                let col = seg.fast_fields().u64(text::field::ID).context("opening the `id` fast field")?;
                &ids.insert((seg.segment_id(), col)).1
            }
        };
        out.insert(col.first(doc).with_context(|| format!("document {doc} has no id"))?);
        Ok(true)
    })?;
    Ok(out)
}

/// Calls `f(segment, doc)` for every live document in language `lang`, segment by segment,
/// until it returns `false`.
fn for_each_live_with_lang(
    snapshot: &Snapshot,
    lang: &str,
    mut f: impl FnMut(&tantivy::SegmentReader, tantivy::DocId) -> Result<bool>,
) -> Result<()> {
    let term = Term::from_field_text(snapshot.fields().lang, lang);
    for seg in snapshot.searcher().segment_readers() {
        let inverted = seg
            .inverted_index(snapshot.fields().lang)
            .context("opening the `lang` postings")?;
        let Some(mut postings) = inverted
            .read_postings(&term, IndexRecordOption::Basic)
            .context("reading the `lang` postings")?
        else {
            continue;
        };
        let mut doc = postings.doc();
        while doc != TERMINATED {
            if !seg.is_deleted(doc) && !f(seg, doc)? {
                return Ok(());
            }
            doc = postings.advance();
        }
    }
    Ok(())
}
