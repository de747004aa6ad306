"""A tiny BERT-style WordPiece tokenizer built in memory, so core tests need no model files."""

from __future__ import annotations

from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordPiece

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]", "[unused1]", "[unused2]"]
WORDS = ["semantic", "sequential", "it", "is", "normal", "or", "anomaly", "?", "receiving",
         "block", "packet", "responder", "for", "terminating", "deleting", "file", "src", "dest",
         "disk", "failure", "on", "node", "reported", "job", "done", "error"]
PIECES = [str(d) for d in range(10)] + list("abcdef") + [f"##{c}" for c in "0123456789abcdef"]


def tiny_tokenizer() -> Tokenizer:
    vocab = {token: i for i, token in enumerate(SPECIAL + WORDS + PIECES)}
    tokenizer = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tokenizer
