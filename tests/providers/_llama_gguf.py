"""Build a tiny llama-architecture GGUF with random weights, for tests against a real
llama.cpp server (tests/client/test_real_llama_server.py). It needs `gguf` and `numpy`, which
the project itself does not depend on, so the test runs it with the interpreter that has
llama-cpp-python:

    python tests/client/_llama_gguf.py OUT.gguf

The model is nonsense but well formed: n_embd 64, 2 layers, 4 heads, context 512, F32 weights
from a fixed seed (well under 1 MB). Its SentencePiece ("llama") vocabulary has the 256 byte
tokens <0x00>..<0xFF>, so any prompt tokenizes, plus printable ASCII and a few merges. The
output rows of the control and byte tokens are zero, so greedy decoding (temperature 0) never
ends the answer early and always writes printable ASCII.
"""

from __future__ import annotations

import sys
from pathlib import Path

N_EMBD = 64
N_LAYER = 2
N_HEAD = 4
N_FF = 128
N_CTX = 512
SEED = 1234
MERGES = ["▁t", "▁a", "▁th", "he", "in", "er", "an", "on", "re", "at", "en", "▁the", "or", "es"]


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    """Tokens, scores and token types of a small SPM vocabulary that covers every byte."""
    from gguf import TokenType

    tokens = ["<unk>", "<s>", "</s>"]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [TokenType.BYTE] * 256
    singles = ["▁", *(chr(c) for c in range(0x21, 0x7F))]
    tokens += singles + MERGES
    types += [TokenType.NORMAL] * (len(singles) + len(MERGES))
    # SentencePiece merges the pair whose result scores highest; longer pieces score higher.
    scores = [0.0] * 259 + [-1000.0] * len(singles) + [-10.0 * (9 - len(m)) for m in MERGES]
    return tokens, scores, [int(t) for t in types]


def build(path: Path) -> Path:
    import numpy as np
    from gguf import GGUFWriter

    tokens, scores, types = vocabulary()
    n_vocab = len(tokens)
    rng = np.random.default_rng(SEED)

    def weights(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.5).astype(np.float32)

    writer = GGUFWriter(str(path), "llama")
    writer.add_name("tiny-random-llama")
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(0)  # all F32
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)

    # numpy shape (rows, cols) is ggml's {cols, rows}: token_embd is {n_embd, n_vocab}.
    writer.add_tensor("token_embd.weight", weights(n_vocab, N_EMBD))
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    output = weights(n_vocab, N_EMBD)
    output[:259] = 0.0  # control and byte tokens: never the greedy pick
    writer.add_tensor("output.weight", output)
    for i in range(N_LAYER):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"blk.{i}.{name}.weight", weights(N_EMBD, N_EMBD))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weights(N_FF, N_EMBD))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weights(N_FF, N_EMBD))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weights(N_EMBD, N_FF))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python _llama_gguf.py OUT.gguf")
    print(build(Path(sys.argv[1])))
