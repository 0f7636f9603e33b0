//! Indexing with a real encoder, and the index refusing encoders whose vectors do not fit:
//! a query encoder of another embedding space (all-MiniLM-L6-v2 has e5-small's dimension, 384,
//! but not its space), a document encoder other than the one that built the index; and a query
//! in a language with a translation table encoded with its English gloss.

mod common;

use std::sync::Arc;

use optical::encoder::{Encoder, default_device};
use optical::engine::{Document, Index, IndexConfig, VectorElem};
use optical::search::{Mode, SearchRequest, Searcher};
use optical::translate::TranslationTable;

fn docs() -> Vec<Document> {
    [
        ("kano", "Kano Pillars", "Kano Pillars Football Club is a Nigerian football club based in Kano. It was founded in 1990."),
        ("bbc", "BBC", "The British Broadcasting Corporation is headquartered at Broadcasting House in London."),
        ("jackson", "Michael Jackson", "Michael Jackson had two sons and a daughter: Prince, Paris and Bigi."),
        ("rice", "Rice", "Rice is the seed of the grass species Oryza sativa, a staple food in much of the world."),
        ("volcano", "Volcano", "A volcano is a rupture in the crust of a planet through which lava escapes."),
    ]
    .into_iter()
    .map(|(k, t, b)| Document::new(k, b).with_title(t).with_lang("eng"))
    .collect()
}

#[test]
fn e5_index_records_its_encoder_and_refuses_others() {
    let device = default_device();
    let e5 = Arc::new(Encoder::load(common::model_dir("multilingual-e5-small"), &device).unwrap());
    let minilm = Arc::new(Encoder::load(common::model_dir("all-minilm-l6-v2"), &device).unwrap());
    assert_eq!(
        e5.dim(),
        minilm.dim(),
        "the test relies on equal dimensions"
    );
    let tmp = tempfile::tempdir().unwrap();

    let index = Index::open_or_create_for(tmp.path(), &e5).unwrap();
    let mut w = index.writer().unwrap().with_encoder(Arc::clone(&e5)).unwrap();
    w.add_batch(docs()).unwrap();
    let info = w.commit().unwrap();
    drop(w);
    assert_eq!(info.docs, 5);
    let cfg = index.config();
    assert_eq!(cfg.elem, VectorElem::F32I8);
    assert_eq!(cfg.encoder, Some(optical::engine::encoder_record(e5.info())));
    // The stored vectors are the encoder's passage embeddings of title + body.
    let snap = index.snapshot();
    let id = snap.id_of("rice").unwrap().unwrap();
    let want = e5
        .encode_passages(&[optical::engine::passage_text("Rice", &docs()[3].body)])
        .unwrap()
        .remove(0);
    let got = snap.vector(id).unwrap();
    assert!(got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5));

    // A Hausa question finds the English passage by meaning alone.
    let searcher = Searcher::new(snap.clone())
        .with_encoder(Arc::clone(&e5))
        .unwrap();
    let res = searcher
        .search(
            &SearchRequest::new("A wace shekara aka kafa Kano pillars?")
                .with_mode(Mode::Dense)
                .with_k(1),
        )
        .unwrap();
    assert_eq!(res.hits[0].key, "kano");
    let res = searcher
        .search(
            &SearchRequest::new("Yayan Micheal Jackson nawa?")
                .with_k(2)
                .with_explain(true),
        )
        .unwrap();
    assert_eq!(res.hits[0].key, "jackson", "{:?}", res.hits);

    // A query encoder of another embedding space is refused, naming both.
    let err = Searcher::new(snap.clone())
        .with_encoder(Arc::clone(&minilm))
        .err()
        .expect("must refuse")
        .to_string();
    assert!(
        err.contains("embedding space") && err.contains(&e5.info().name),
        "{err}"
    );
    let err = Searcher::new(snap.clone())
        .with_language_encoder("hau", Arc::clone(&minilm))
        .err()
        .expect("must refuse");
    assert!(format!("{err:#}").contains("hau"), "{err:#}");
    // ... and so is another document encoder.
    let err = index.writer().unwrap().with_encoder(Arc::clone(&minilm))
        .err()
        .expect("must refuse");
    assert!(format!("{err:#}").contains("refusing to mix"), "{err:#}");
    drop(index);
    let err = Index::open_or_create_for(tmp.path(), &minilm)
        .err()
        .expect("must refuse");
    assert!(format!("{err:#}").contains("refusing to mix"), "{err:#}");

    // Reopened, the index takes more documents from the same encoder; a document bringing its
    // own vector is refused.
    let index = Index::open(tmp.path()).unwrap();
    let mut w = index.writer().unwrap().with_encoder(Arc::clone(&e5)).unwrap();
    let err = w
        .upsert(Document::new("v", "text").with_vector(vec![0.0; 384]))
        .unwrap_err();
    assert!(err.to_string().contains("own vector"), "{err}");
    w.upsert(Document::new("paris", "Paris is the capital of France.").with_lang("eng"))
        .unwrap();
    assert!(
        w.id_of("paris").unwrap().is_some() && w.id_of("kano").unwrap().is_some() && w.id_of("nope").unwrap().is_none()
    );
    assert!(w.delete("volcano").unwrap());
    let info = w.commit().unwrap();
    assert_eq!(info.docs, 5);
    assert_eq!(index.snapshot().num_vectors(), 5);

    // Vectors from an unrecorded source and text-only indexes are refused as well.
    let tmp2 = tempfile::tempdir().unwrap();
    let raw = Index::create(tmp2.path().join("raw"), IndexConfig::with_vectors(384)).unwrap();
    let err = raw.writer().unwrap().with_encoder(Arc::clone(&e5)).err().expect("must refuse");
    assert!(format!("{err:#}").contains("unrecorded"), "{err:#}");
    let text = Index::create(tmp2.path().join("text"), IndexConfig::text_only()).unwrap();
    let err = Searcher::for_index(&text)
        .with_encoder(e5)
        .err()
        .expect("must refuse");
    assert!(err.to_string().contains("text-only"), "{err}");
}

#[test]
fn a_query_in_a_table_s_language_is_encoded_with_its_gloss() {
    let e5 = Arc::new(Encoder::load(common::model_dir("multilingual-e5-small"), &default_device()).unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::open_or_create_for(tmp.path(), &e5).unwrap();
    let mut w = index.writer().unwrap().with_encoder(Arc::clone(&e5)).unwrap();
    w.add_batch(docs()).unwrap();
    w.commit().unwrap();
    let mut table = TranslationTable::new("hau", "eng", "test");
    table.insert("yayan", vec![("children".into(), 1.0)]);
    table.insert("nawa", vec![("mani".into(), 0.8), ("how".into(), 0.2)]);
    table.set_written_forms([("mani".to_string(), "many".to_string())].into());
    let searcher = Searcher::for_index(&index).with_encoder(Arc::clone(&e5)).unwrap().with_translation_table(Arc::new(table));
    let query = "Yayan Jackson nawa?";
    let glossed = "Yayan Jackson nawa? children many";
    assert_eq!(searcher.dense_query_text(query, Some("hau")), glossed);
    assert_eq!(searcher.dense_query_text(query, Some("yor")), query, "no table for the language: as written");

    let req = SearchRequest::new(query).with_query_lang("hau").with_mode(Mode::Dense).with_k(5);
    let scored = |s: &Searcher, req: &SearchRequest| -> Vec<(String, f32)> {
        s.search(req).unwrap().hits.into_iter().map(|h| (h.key, h.score)).collect()
    };
    let vector = |text: &str| e5.encode_queries(&[text]).unwrap().remove(0);
    let with_gloss = scored(&searcher, &req);
    assert_eq!(with_gloss, scored(&searcher, &req.clone().with_query_vector(vector(glossed))), "the searcher encodes the glossed text");
    let off = searcher.clone().with_query_gloss(false);
    assert_eq!(off.dense_query_text(query, Some("hau")), query);
    let without = scored(&off, &req);
    assert_eq!(without, scored(&off, &req.clone().with_query_vector(vector(query))), "glosses off: the text as written");
    assert_ne!(with_gloss, without);
    assert_eq!(with_gloss[0].0, "jackson");
}
