"""The corpus tokenizer: a byte-level BPE (HF `tokenizers`) trained on the observing logs.

Byte-level BPE (Radford et al. 2019, GPT-2) never produces an unknown token and decodes back to the
exact input, so numbers and star names in the logs survive tokenisation. It is trained on the train
split only (the dataset does this), so no val/test text leaks into the vocabulary, and saved as
`tokenizer.json` beside the data. Every encoding is `<bos> ... <eos>`; padding uses `<pad>` = 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from astrobio.errors import InputValidationError, StorageError
from astrobio.io import atomic_path

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")  # ids 0, 1, 2, 3 in this order
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(len(SPECIAL_TOKENS))
TOKENIZER_FILE = "tokenizer.json"


@dataclass
class TokenizerConfig:
    """How the corpus tokenizer is trained."""

    vocab_size: int = 2048  # total, special tokens and the 256 byte symbols included
    min_frequency: int = 2  # a pair must occur this often to be merged


def train_tokenizer(texts: Iterable[str], config: TokenizerConfig | None = None):
    """Train a byte-level BPE on `texts`; returns a `tokenizers.Tokenizer` that adds `<bos>`/`<eos>`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    config = config or TokenizerConfig()
    n_base = 256 + len(SPECIAL_TOKENS)
    if config.vocab_size < n_base:
        raise InputValidationError("vocab_size", config.vocab_size, f">= {n_base} (256 bytes + special tokens)")
    if config.min_frequency < 1:
        raise InputValidationError("min_frequency", config.min_frequency, ">= 1")
    # Sorted, de-duplicated input: the trained merges then do not depend on corpus order.
    corpus = sorted({t for t in texts if t and t.strip()})
    if not corpus:
        raise InputValidationError("texts", "[]", "at least one non-empty text to train the tokenizer on")

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size,
        min_frequency=config.min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer, length=len(corpus))
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", BOS_ID), ("<eos>", EOS_ID)])
    return tok


def save_tokenizer(tokenizer, path: str | os.PathLike) -> Path:
    """Write the tokenizer JSON atomically (astrobio.io.atomic_path: temp file, fsync, rename)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tokenizer.save(str(tmp), pretty=False)
    return path


def load_tokenizer(path: str | os.PathLike):
    """Load a tokenizer saved by `save_tokenizer`; a directory means `<dir>/tokenizer.json`."""
    from tokenizers import Tokenizer

    path = Path(path)
    if path.is_dir():
        path = path / TOKENIZER_FILE
    if not path.is_file():
        raise StorageError(f"no tokenizer at {path}: train one with train_tokenizer/ensure_tokenizer")
    return _checked(Tokenizer.from_file(str(path)), str(path))


def tokenizer_from_json(text: str, where: str = "tokenizer JSON"):
    """A tokenizer from its JSON string (`tokenizer.to_str()`, as training checkpoints carry it)."""
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_str(text)
    except Exception as exc:  # the tokenizers library raises plain Exceptions on bad JSON
        raise StorageError(f"{where}: not a tokenizer ({exc})") from None
    return _checked(tok, where)


def _checked(tok, where: str):
    for i, name in enumerate(SPECIAL_TOKENS):
        if tok.token_to_id(name) != i:
            raise StorageError(f"tokenizer {where}: special token {name!r} must have id {i}, "
                               f"has {tok.token_to_id(name)}")
    return tok


def ensure_tokenizer(directory: str | os.PathLike, texts: Iterable[str],
                     config: TokenizerConfig | None = None):
    """Load `<directory>/tokenizer.json`, training and saving it on `texts` first if it is missing."""
    path = Path(directory) / TOKENIZER_FILE
    if not path.is_file():
        save_tokenizer(train_tokenizer(texts, config), path)
    return load_tokenizer(path)


def encode_batch(tokenizer, texts: Sequence[str], max_length: int = 128) -> list[list[int]]:
    """Token ids per text, `<bos> ... <eos>`, truncated to at most `max_length` ids (eos kept)."""
    if max_length < 2:
        raise InputValidationError("max_length", max_length, ">= 2 (room for <bos> and <eos>)")
    return [truncate_ids(enc.ids, max_length) for enc in tokenizer.encode_batch(list(texts))]


def truncate_ids(ids: Sequence[int], max_length: int) -> list[int]:
    """At most `max_length` ids; a cut sequence still ends in `<eos>` so the LM sees where text stops."""
    ids = list(ids)
    return ids if len(ids) <= max_length else ids[: max_length - 1] + [EOS_ID]


def decode(tokenizer, ids: Sequence[int]) -> str:
    """Text of `ids` without special tokens."""
    return tokenizer.decode(list(ids), skip_special_tokens=True)
