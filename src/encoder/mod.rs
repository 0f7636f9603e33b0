//! BERT-family encoder on burn: config, safetensors weights, tokenizer, pooling.
