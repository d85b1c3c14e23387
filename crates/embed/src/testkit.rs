//! Test support (feature `testkit`): writes a small, randomly initialised BERT cross-encoder
//! in the real Hugging Face file layout, for tests of rerank code paths on machines where
//! no trained cross-encoder can be downloaded; loads the real ONNX engine from the models
//! `cargo xtask models` fetched. Not for production use.

use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::path::Path;

/// Shape of the tiny model.
pub const HIDDEN: usize = 32;
pub const LAYERS: usize = 2;
pub const HEADS: usize = 4;
pub const INTERMEDIATE: usize = 64;
pub const MAX_POSITIONS: usize = 512;

/// Write `config.json`, `model.safetensors` (weights drawn from `seed`) and a copy of
/// `tokenizer_json` into `dir`. Returns the tensors by name for reference computations.
pub fn write_random_cross_encoder(dir: &Path, tokenizer_json: &Path, seed: u64) -> std::io::Result<HashMap<String, (Vec<usize>, Vec<f32>)>> {
    let tok: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(tokenizer_json)?)?;
    let vocab = tok["model"]["vocab"].as_object().map_or(30522, |v| v.len());
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tensors: HashMap<String, (Vec<usize>, Vec<f32>)> = HashMap::new();
    let mut put = |name: String, shape: Vec<usize>, center: f32, scale: f32| {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|_| center + scale * (rng.random::<f32>() * 2.0 - 1.0)).collect();
        tensors.insert(name, (shape, data));
    };
    let h = HIDDEN;
    put("bert.embeddings.word_embeddings.weight".into(), vec![vocab, h], 0.0, 1.0);
    put("bert.embeddings.position_embeddings.weight".into(), vec![MAX_POSITIONS, h], 0.0, 0.5);
    put("bert.embeddings.token_type_embeddings.weight".into(), vec![2, h], 0.0, 0.5);
    put("bert.embeddings.LayerNorm.weight".into(), vec![h], 1.0, 0.2);
    put("bert.embeddings.LayerNorm.bias".into(), vec![h], 0.0, 0.2);
    for l in 0..LAYERS {
        let p = format!("bert.encoder.layer.{l}");
        for m in ["query", "key", "value"] {
            put(format!("{p}.attention.self.{m}.weight"), vec![h, h], 0.0, 0.4);
            put(format!("{p}.attention.self.{m}.bias"), vec![h], 0.0, 0.1);
        }
        put(format!("{p}.attention.output.dense.weight"), vec![h, h], 0.0, 0.3);
        put(format!("{p}.attention.output.dense.bias"), vec![h], 0.0, 0.1);
        put(format!("{p}.attention.output.LayerNorm.weight"), vec![h], 1.0, 0.2);
        put(format!("{p}.attention.output.LayerNorm.bias"), vec![h], 0.0, 0.2);
        put(format!("{p}.intermediate.dense.weight"), vec![INTERMEDIATE, h], 0.0, 0.3);
        put(format!("{p}.intermediate.dense.bias"), vec![INTERMEDIATE], 0.0, 0.1);
        put(format!("{p}.output.dense.weight"), vec![h, INTERMEDIATE], 0.0, 0.3);
        put(format!("{p}.output.dense.bias"), vec![h], 0.0, 0.1);
        put(format!("{p}.output.LayerNorm.weight"), vec![h], 1.0, 0.2);
        put(format!("{p}.output.LayerNorm.bias"), vec![h], 0.0, 0.2);
    }
    put("bert.pooler.dense.weight".into(), vec![h, h], 0.0, 0.4);
    put("bert.pooler.dense.bias".into(), vec![h], 0.0, 0.1);
    put("classifier.weight".into(), vec![1, h], 0.0, 1.0);
    put("classifier.bias".into(), vec![1], 0.0, 0.1);

    let as_tensors: HashMap<String, Tensor> = tensors
        .iter()
        .map(|(k, (shape, data))| Ok((k.clone(), Tensor::from_vec(data.clone(), shape.as_slice(), &Device::Cpu)?)))
        .collect::<candle_core::Result<_>>()
        .map_err(std::io::Error::other)?;
    std::fs::create_dir_all(dir)?;
    candle_core::safetensors::save(&as_tensors, dir.join("model.safetensors")).map_err(std::io::Error::other)?;
    let config = serde_json::json!({
        "architectures": ["BertForSequenceClassification"],
        "model_type": "bert",
        "vocab_size": vocab,
        "hidden_size": h,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "intermediate_size": INTERMEDIATE,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": MAX_POSITIONS,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "id2label": {"0": "LABEL_0"},
        "label2id": {"LABEL_0": 0}
    });
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&config)?)?;
    std::fs::copy(tokenizer_json, dir.join("tokenizer.json"))?;
    Ok(tensors)
}

/// The ONNX Runtime engine on the int8 model `cargo xtask models` put under the
/// repository's `models/`, two threads, `batch_size` sentences a batch.
#[cfg(feature = "onnx")]
pub fn onnx_embedder(batch_size: usize) -> crate::OnnxEmbedder {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let lib = root.join("onnxruntime/libonnxruntime.so.1.31.1");
    assert!(lib.is_file(), "ONNX Runtime missing at {}: run `cargo xtask models`", lib.display());
    crate::OnnxEmbedder::load(crate::OnnxEmbedderConfig {
        model_dir: root.join("all-MiniLM-L6-v2-int8"),
        runtime_lib: lib,
        model_id: "sentence-transformers/all-MiniLM-L6-v2".into(),
        max_seq_len: 256,
        batch_size,
        threads: 2,
        memory: None,
    })
    .expect("the ONNX engine loads")
}

/// Anonymous resident memory of this process (`RssAnon`), in MB. Tests that read it run
/// alone in their test binary: tests of one binary share the process.
pub fn anon_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("RssAnon in /proc/self/status");
    kib / 1024.0
}
