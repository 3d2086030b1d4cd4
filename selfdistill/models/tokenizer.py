"""A character-level tokenizer built locally with `tokenizers` (no download).

Every printable ASCII character plus newline is one token; the reasoning markers
``<think>``, ``</think>``, ``\\boxed{`` and the code fence are single added tokens so the tiny
models spend their capacity on the content. Wrapped as a `PreTrainedTokenizerFast` so TRL and
transformers treat it like any hub tokenizer (padding side left for generation).
"""

from __future__ import annotations

import string

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
MARKERS = ["<think>", "</think>", "\\boxed{", "```python\n", "\n```", "def f(", "):\n    return "]


def _alphabet() -> list[str]:
    chars = [c for c in string.printable if c not in "\r\x0b\x0c\t"]
    return sorted(set(chars))


def build_char_tokenizer():
    """Return a `PreTrainedTokenizerFast` over characters with the markers as single tokens."""
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate([PAD, BOS, EOS, UNK] + _alphabet())}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, bos_token=BOS, eos_token=EOS, unk_token=UNK, padding_side="left"
    )
    fast.add_tokens(MARKERS)
    fast.model_max_length = 512
    return fast
