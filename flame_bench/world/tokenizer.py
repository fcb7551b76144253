"""A word-level fast tokenizer built from the world's vocabulary, with a chat template.

Every word of the world is one token, so a person's name, a year or a city is learnt as a unit. Text
splits on whitespace and punctuation (`pre_tokenizers.Whitespace`); decoding rejoins words with spaces and
re-attaches punctuation, so `decode(encode(text)) == text` for world text (tested).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>"]
# The `{% generation %}` markers let trl's SFT use assistant_only_loss. Whitespace is not a token, so the
# template needs no newlines.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|> ' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + ' </s>' }}{% endgeneration %}"
    "{% else %}{{ message['content'] + ' </s>' }}{% endif %}"
    "{{ ' ' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|> ' }}{% endif %}"
)


def build_tokenizer(texts: Iterable[str], model_max_length: int = 512):  # -> PreTrainedTokenizerFast
    from transformers import PreTrainedTokenizerFast

    pre = pre_tokenizers.Whitespace()
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(piece for piece, _ in pre.pre_tokenize_str(text))
    words = sorted(counts, key=lambda w: (-counts[w], w))  # deterministic order
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for w in words:
        vocab.setdefault(w, len(vocab))

    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre
    tok.decoder = decoders.Sequence(
        [decoders.WordPiece(cleanup=True), decoders.Replace(" :", ":"), decoders.Replace(" ;", ";")]
    )
    tok.add_special_tokens(SPECIAL_TOKENS)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", vocab["<s>"])]
    )
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=["<|system|>", "<|user|>", "<|assistant|>"],
        padding_side="left",  # batched decoder-only generation and trl's DPO need left padding
        model_max_length=model_max_length,
    )
    hf.chat_template = CHAT_TEMPLATE
    return hf
