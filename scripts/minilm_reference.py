"""Reference embeddings of all-MiniLM-L6-v2 for Lathe's golden test, computed independently of
Lathe: BERT written out in numpy (float64), tokenized by the Python `tokenizers` package from the
same tokenizer.json, mean pooling over the attention mask and L2 normalization, exactly as
sentence-transformers does (max_seq_length 256). Run once; the output is committed as
assets/text/minilm_golden.json.

usage: python scripts/minilm_reference.py MODEL_DIR OUT.json   (needs numpy, safetensors, tokenizers)
"""
import json
import math
import sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

SENTENCES = [
    "This framework generates embeddings for each input sentence",
    "The quick brown fox jumps over the lazy dog.",
    "Grüße aus Köln! Ça va? 東京は大きい。",
    "A man is playing a guitar.",
    "lathe " * 300,  # longer than 256 tokens: truncated
]

erf = np.vectorize(math.erf)


def layer_norm(x, g, b, eps):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * g + b


def embed(w, cfg, ids, types):
    f = lambda k: w[k].astype(np.float64)
    eps = cfg["layer_norm_eps"]
    n = len(ids)
    x = f("embeddings.word_embeddings.weight")[ids]
    x = x + f("embeddings.position_embeddings.weight")[:n] + f("embeddings.token_type_embeddings.weight")[types]
    x = layer_norm(x, f("embeddings.LayerNorm.weight"), f("embeddings.LayerNorm.bias"), eps)
    heads = cfg["num_attention_heads"]
    hd = cfg["hidden_size"] // heads
    lin = lambda x, p: x @ f(p + ".weight").T + f(p + ".bias")
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q = lin(x, p + "attention.self.query").reshape(n, heads, hd).transpose(1, 0, 2)
        k = lin(x, p + "attention.self.key").reshape(n, heads, hd).transpose(1, 0, 2)
        v = lin(x, p + "attention.self.value").reshape(n, heads, hd).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        a = (s @ v).transpose(1, 0, 2).reshape(n, -1)
        x = layer_norm(lin(a, p + "attention.output.dense") + x,
                       f(p + "attention.output.LayerNorm.weight"), f(p + "attention.output.LayerNorm.bias"), eps)
        h = lin(x, p + "intermediate.dense")
        h = 0.5 * h * (1.0 + erf(h / math.sqrt(2.0)))
        x = layer_norm(lin(h, p + "output.dense") + x,
                       f(p + "output.LayerNorm.weight"), f(p + "output.LayerNorm.bias"), eps)
    e = x.mean(0)
    return e / np.linalg.norm(e)


def main():
    model_dir, out = sys.argv[1], sys.argv[2]
    w = load_file(f"{model_dir}/model.safetensors")
    cfg = json.load(open(f"{model_dir}/config.json"))
    tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tok.no_padding()
    tok.enable_truncation(256)
    items = []
    for s in SENTENCES:
        enc = tok.encode(s)
        e = embed(w, cfg, np.array(enc.ids), np.array(enc.type_ids))
        items.append({"text": s, "num_tokens": len(enc.ids), "embedding": [float(f"{v:.8g}") for v in e]})
    json.dump({"model": "all-MiniLM-L6-v2", "how": __doc__.split("\n\n")[0], "items": items}, open(out, "w"), indent=1)


if __name__ == "__main__":
    main()
