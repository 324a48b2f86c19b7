"""Build a tiny random-weight llama for `mlx_lm.server`, offline and in a few seconds, for the
real-server tests (tests/real_server/). It needs mlx, mlx-lm and `tokenizers`, which the project
does not depend on, so the tests run it with the interpreter that has mlx_lm:

    python tests/real_server/_mlx_model.py OUT_DIR

OUT_DIR gets what `mlx_lm.server --model OUT_DIR` loads:
- config.json and model.safetensors: an `mlx_lm.models.llama` model, hidden size 64, 2 layers,
  4 heads, float32 weights drawn by numpy from a fixed seed (well under 1 MB);
- tokenizer.json: a byte-level BPE trained on two sentences with `tokenizers` (so any text
  tokenizes), plus the special token `</s>`, the end of a turn;
- tokenizer_config.json: that eos token and a small Jinja chat template.

The answers are nonsense but printable: the output rows of every token that is not plain
printable ASCII (the special token, control and non-ASCII bytes) are zero, so greedy decoding
(temperature 0) never writes them, never ends early, and every answer stops at max_tokens with
finish_reason "length".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HIDDEN = 64
LAYERS = 2
HEADS = 4
FFN = 128
CONTEXT = 1024
SEED = 1234
MERGES = 64  # learned merges on top of the 256 byte tokens
EOS = "</s>"
CORPUS = [
    "The quick brown fox jumps over the lazy dog, and the dog sleeps on in the sun.",
    "Say hello to the world: hello, world! Then answer in JSON with a greeting.",
]
# Role markers are plain text, so every message renders the same way for any tokenizer.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def train_tokenizer() -> Any:
    """A byte-level BPE (a tokenizers.Tokenizer) trained on CORPUS."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=len(alphabet) + 1 + MERGES,
        special_tokens=[EOS],
        initial_alphabet=alphabet,
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    return tokenizer


def printable_ids(tokenizer: Any) -> list[int]:
    """The tokens whose text is printable ASCII (space to tilde): the only ones greedy
    decoding may pick."""
    special = {tokenizer.token_to_id(EOS)}
    keep = []
    for token_id in range(tokenizer.get_vocab_size()):
        if token_id in special:
            continue
        text = tokenizer.decode([token_id])
        if text and all(" " <= c <= "~" for c in text):
            keep.append(token_id)
    return keep


def build(folder: Path) -> Path:
    import mlx.core as mx
    import numpy as np
    from mlx.utils import tree_flatten
    from mlx_lm.models.llama import Model, ModelArgs

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer()
    tokenizer.save(str(folder / "tokenizer.json"))
    vocab = tokenizer.get_vocab_size()
    eos_id = tokenizer.token_to_id(EOS)

    config = {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "intermediate_size": FFN,
        "num_attention_heads": HEADS,
        "num_key_value_heads": HEADS,
        "rms_norm_eps": 1e-5,
        "vocab_size": vocab,
        "max_position_embeddings": CONTEXT,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "eos_token_id": eos_id,
        "torch_dtype": "float32",
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "eos_token": EOS,
                "model_max_length": CONTEXT,
                "chat_template": CHAT_TEMPLATE,
            },
            indent=2,
        ),
        encoding="utf-8",
    )

    # numpy draws the weights (a fixed seed gives the same model on every machine and every mlx
    # version); mlx only shapes the model and writes the file.
    model = Model(ModelArgs.from_dict(config))
    rng = np.random.default_rng(SEED)
    weights = {}
    for name, param in tree_flatten(model.parameters()):
        if name.endswith("norm.weight"):
            value = np.ones(param.shape, dtype=np.float32)
        else:
            value = (rng.standard_normal(param.shape) * 0.5).astype(np.float32)
        weights[name] = value
    head = weights["lm_head.weight"]
    blocked = np.ones(vocab, dtype=bool)
    blocked[printable_ids(tokenizer)] = False
    head[blocked] = 0.0
    mx.save_safetensors(
        str(folder / "model.safetensors"),
        {name: mx.array(value) for name, value in weights.items()},
        metadata={"format": "mlx"},
    )
    return folder


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python _mlx_model.py OUT_DIR")
    print(build(Path(sys.argv[1])))
