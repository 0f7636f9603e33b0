//! The BERT module on an autodiff device (what distillation trains), padding invariance, and
//! the save → load round trip of a model directory. Small random-weight models: these are
//! shape/gradient/IO tests; the real models are checked in `encoder_golden.rs`.
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use optical::encoder::{BertConfig, BertModel, l2_normalize, load_model, mean_pool};

fn tiny() -> BertConfig {
    BertConfig::new(50, 16, 2, 4, 32, 24)
}

fn ints(rows: Vec<Vec<i64>>, device: &Device) -> Tensor<2, Int> {
    let (b, s) = (rows.len(), rows[0].len());
    Tensor::from_data(TensorData::new(rows.concat(), [b, s]), device)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

#[test]
fn gradients_reach_every_layer_on_an_autodiff_device() {
    let device = Device::flex().autodiff();
    let model = BertModel::init(&tiny(), &device);
    let ids = ints(vec![vec![1, 5, 7, 2, 0], vec![1, 9, 2, 0, 0]], &device);
    let mask = ints(vec![vec![1, 1, 1, 1, 0], vec![1, 1, 1, 0, 0]], &device);
    let types = ints(vec![vec![0; 5], vec![0; 5]], &device);
    let states = model.forward(ids, types, mask.clone());
    assert_eq!(states.dims(), [2, 5, 16]);
    let pooled = l2_normalize(mean_pool(states, mask));
    // LayerNorm outputs sum to zero across the hidden axis, so weight the components unevenly
    // (a plain sum would have a zero gradient by construction).
    let w = Tensor::<1, Int>::arange(0..16, &device)
        .float()
        .unsqueeze::<2>();
    let loss = (pooled * w).sum();
    let grads = loss.backward();
    let first = model.encoder.layer[0]
        .attention
        .self_attn
        .query
        .weight
        .val()
        .grad(&grads);
    let last = model.encoder.layer[1]
        .output
        .dense
        .weight
        .val()
        .grad(&grads);
    let word = model.embeddings.word_embeddings.weight.val().grad(&grads);
    for (name, g) in [
        ("layer 0 query", first),
        ("layer 1 output", last),
        ("word embeddings", word),
    ] {
        let g = values(g.unwrap_or_else(|| panic!("no gradient for {name}")));
        assert!(g.iter().any(|x| *x != 0.0), "zero gradient for {name}");
        assert!(
            g.iter().all(|x| x.is_finite()),
            "non-finite gradient for {name}"
        );
    }
}

#[test]
fn padding_does_not_change_token_states() {
    let device = Device::flex();
    let model = BertModel::init(&tiny(), &device);
    let alone = model.forward(
        ints(vec![vec![1, 5, 7, 2]], &device),
        ints(vec![vec![0; 4]], &device),
        ints(vec![vec![1; 4]], &device),
    );
    let padded = model.forward(
        ints(
            vec![vec![1, 5, 7, 2, 3, 3, 3], vec![1, 4, 4, 4, 4, 4, 2]],
            &device,
        ),
        ints(vec![vec![0; 7], vec![0; 7]], &device),
        ints(vec![vec![1, 1, 1, 1, 0, 0, 0], vec![1; 7]], &device),
    );
    let a = values(alone);
    let b = values(padded.slice([0..1, 0..4]));
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(diff < 1e-5, "padding changed real-token states by {diff}");
}

#[test]
fn trained_module_saves_to_a_model_dir_and_loads_back() {
    let device = Device::flex();
    // Train-side module (autodiff), saved as the distill pipeline does.
    let model = BertModel::init(&tiny(), &device.clone().autodiff());
    let dir = tempfile::tempdir().unwrap();
    model.save_model_dir(dir.path()).unwrap();
    for f in ["config.json", "model.safetensors"] {
        assert!(dir.path().join(f).is_file(), "{f} not written");
    }
    let loaded = load_model(dir.path(), &device).unwrap();
    let mut config = loaded.config.clone();
    config.extra.clear(); // `architectures` etc. are added for transformers
    assert_eq!(config, tiny());
    let run = |m: &BertModel| {
        values(m.forward(
            ints(vec![vec![1, 5, 7, 2]], &device),
            ints(vec![vec![0; 4]], &device),
            ints(vec![vec![1; 4]], &device),
        ))
    };
    let original = model.valid().fork(&device);
    assert_eq!(
        run(&original),
        run(&loaded),
        "weights changed in the round trip"
    );

    // The saved file uses HF names (what transformers and the golden loader expect).
    let bytes = std::fs::read(dir.path().join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = st.names();
    names.sort();
    assert!(
        names.contains(&"encoder.layer.1.attention.self.query.weight"),
        "{names:?}"
    );
    assert!(names.contains(&"embeddings.LayerNorm.weight"), "{names:?}");
    let q = st
        .tensor("encoder.layer.0.intermediate.dense.weight")
        .unwrap();
    assert_eq!(
        q.shape(),
        &[32, 16],
        "Linear weights are stored [out, in] like PyTorch"
    );
}

#[test]
fn encoder_can_be_shared_between_threads() {
    // The engine holds one encoder and serves queries from several threads.
    fn send_sync<T: Send + Sync>() {}
    send_sync::<optical::encoder::Encoder>();
    send_sync::<optical::encoder::EncoderInfo>();
}
