"""A tiny random BERT sentence-transformer built in-process (no download), deterministic to the bit.

The WordPiece vocabulary is built by hand (sorted characters, their ## continuations, then sorted words): the
`tokenizers` trainer is not deterministic. 2 layers, 32 wide, mean pooling, Normalize: builds in ~0.1 s.
"""
from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Iterable

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_vocab(texts: Iterable[str] = (), max_words: int = 2000) -> list[str]:
    chars = sorted(set(string.ascii_lowercase + string.digits + string.punctuation))
    counts: dict[str, int] = {}
    for text in texts:
        for w in re.findall(r"[a-z0-9]+", text.lower()):
            counts[w] = counts.get(w, 0) + 1
    words = sorted(w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_words] if len(w) > 1)
    return SPECIALS + chars + [f"##{c}" for c in chars] + words


def _tokenizer(texts: Iterable[str], max_seq_length: int):
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece
    from transformers import BertTokenizerFast

    vocab = build_vocab(texts)
    tok = Tokenizer(WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab.index("[CLS]")), ("[SEP]", vocab.index("[SEP]"))])
    fast = BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                             cls_token="[CLS]", mask_token="[MASK]", model_max_length=max_seq_length)
    return fast, vocab


def build_tiny_cross_encoder(folder: str | Path, texts: Iterable[str] = (), *, seed: int = 0, hidden: int = 32,
                             layers: int = 2, max_length: int = 128) -> Path:
    """A tiny random BERT cross-encoder (one relevance logit) that sentence-transformers' CrossEncoder loads."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    folder = Path(folder)
    fast, vocab = _tokenizer(texts, max_length)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=2 * hidden, max_position_embeddings=max(128, max_length), num_labels=1)
    BertForSequenceClassification(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def build_tiny_model(folder: str | Path, texts: Iterable[str] = (), *, seed: int = 0, hidden: int = 32,
                     layers: int = 2, max_seq_length: int = 64) -> Path:
    """Write a sentence-transformers folder (safetensors) to ``folder`` and return its path."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel

    folder = Path(folder)
    hf_dir = folder / "_hf"
    fast, vocab = _tokenizer(texts, max_seq_length)
    fast.save_pretrained(hf_dir)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=2 * hidden, max_position_embeddings=max(128, max_seq_length))
    BertModel(config).save_pretrained(hf_dir)
    model = SentenceTransformer(modules=[Transformer(str(hf_dir), max_seq_length=max_seq_length),
                                         Pooling(hidden, "mean"), Normalize()], device="cpu")
    model.save(str(folder))
    import shutil

    shutil.rmtree(hf_dir)
    return folder
