"""Corpus tokenizer: special ids, round trip, truncation, determinism, save/load."""

import subprocess
import sys

import pytest

from astrobio.data.tokenizer import (BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID, TokenizerConfig, decode,
                                     encode_batch, ensure_tokenizer, load_tokenizer, save_tokenizer,
                                     train_tokenizer, truncate_ids)
from astrobio.errors import InputValidationError, StorageError

CORPUS = [
    f"Kepler-{i} b transits a K{i % 8} dwarf every {3 + i * 0.7:.2f} days; JWST NIRSpec PRISM took {i % 9} "
    f"transits. {'Two flares were seen.' if i % 3 == 0 else 'The star is quiet.'} Age hint: {i % 11} Gyr."
    for i in range(120)
]


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(CORPUS, TokenizerConfig(vocab_size=400))


def test_special_token_ids_and_vocab_size(tok):
    assert (PAD_ID, BOS_ID, EOS_ID, UNK_ID) == (0, 1, 2, 3)
    assert [tok.token_to_id(s) for s in SPECIAL_TOKENS] == [0, 1, 2, 3]
    assert 256 + 4 < tok.get_vocab_size() <= 400  # merges were learned, cap respected


def test_round_trip_ascii_and_unseen_text(tok):
    texts = [CORPUS[5], "TRAPPIST-1 e: 12 transits, S = 0.66 S_earth; \"CO2\" at 4.3 um?!\n\ttab & {braces} ~",
             "zzz qqq XYZ unseen-words 0123456789"]
    for s, ids in zip(texts, encode_batch(tok, texts, max_length=10_000)):
        assert ids[0] == BOS_ID and ids[-1] == EOS_ID
        assert UNK_ID not in ids  # byte-level: nothing is unknown
        assert decode(tok, ids) == s


def test_bpe_compresses_the_training_corpus(tok):
    ids = encode_batch(tok, [CORPUS[0]], max_length=10_000)[0]
    assert len(ids) < 0.5 * len(CORPUS[0].encode())


def test_truncation_keeps_bos_and_eos(tok):
    ids = encode_batch(tok, [CORPUS[1]], max_length=8)[0]
    assert len(ids) == 8 and ids[0] == BOS_ID and ids[-1] == EOS_ID
    assert truncate_ids([1, 5, 6, 2], 8) == [1, 5, 6, 2]
    assert truncate_ids([1, 5, 6, 7, 2], 4) == [1, 5, 6, 2]
    with pytest.raises(InputValidationError, match="max_length"):
        encode_batch(tok, ["x"], max_length=1)


def test_training_is_deterministic_and_order_independent(tmp_path, tok):
    save_tokenizer(tok, tmp_path / "a.json")
    save_tokenizer(train_tokenizer(list(reversed(CORPUS)) + CORPUS[:7], TokenizerConfig(vocab_size=400)),
                   tmp_path / "b.json")
    # a fresh interpreter (different hash seed) must produce the identical file
    code = ("import sys; sys.path.insert(0, %r); from test_tokenizer import CORPUS; "
            "from astrobio.data.tokenizer import *; "
            "save_tokenizer(train_tokenizer(CORPUS, TokenizerConfig(vocab_size=400)), %r)"
            % (str(__import__("pathlib").Path(__file__).parent), str(tmp_path / "c.json")))
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONHASHSEED": "123"})
    a = (tmp_path / "a.json").read_bytes()
    assert a == (tmp_path / "b.json").read_bytes() == (tmp_path / "c.json").read_bytes()


def test_save_load_and_ensure(tmp_path, tok):
    path = save_tokenizer(tok, tmp_path / "d" / "tokenizer.json")
    loaded = load_tokenizer(tmp_path / "d")  # directory form
    assert loaded.encode(CORPUS[3]).ids == tok.encode(CORPUS[3]).ids
    assert not list(path.parent.glob(".tokenizer-*"))  # no temp file left behind
    # ensure_tokenizer trains only when the file is missing
    t1 = ensure_tokenizer(tmp_path / "e", CORPUS, TokenizerConfig(vocab_size=300))
    t2 = ensure_tokenizer(tmp_path / "e", ["completely different text"], TokenizerConfig(vocab_size=300))
    assert t1.get_vocab() == t2.get_vocab()


def test_bad_inputs(tmp_path):
    with pytest.raises(InputValidationError, match="vocab_size"):
        train_tokenizer(CORPUS, TokenizerConfig(vocab_size=100))
    with pytest.raises(InputValidationError, match="texts"):
        train_tokenizer(["", "  "])
    with pytest.raises(StorageError, match="no tokenizer"):
        load_tokenizer(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text(train_tokenizer(["a b c"] * 3).to_str().replace('"<pad>"', '"<pud>"'))
    with pytest.raises(StorageError, match="special token"):
        load_tokenizer(tmp_path / "bad.json")
