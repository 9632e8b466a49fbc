"""The word-level vocabulary, written as a Hugging Face WordPiece tokenizer.json.

WordPiece with whole words only: @huggingface/tokenizers loads it (it has no WordLevel),
BertPreTokenizer splits punctuation so ',' and '?' are their own tokens, and the
WordPiece decoder's cleanup glues them back ('a , b ?' -> 'a, b?').

Out-of-domain answers need `unknown` and the caption `an image i cannot describe`; these
words come after the original ones, so the original ids do not move. Any other word
(`star`, `photo`, `circles`, `pink`, ...) is one `<unk>` token: the vocabulary has no `##`
pieces, so WordPiece turns a whole word it cannot match into its unk_token, and encode()
here splits text exactly as the tokenizer's Lowercase + BertPreTokenizer do.
"""
from __future__ import annotations

import json
import unicodedata

import shapes

OOD_CAPTION = "an image i cannot describe"
UNKNOWN = "unknown"
PAD, BOS, EOS, UNK, QUESTION, ANSWER = "<pad>", "<s>", "</s>", "<unk>", "<question>", "<answer>"
SPECIALS = [PAD, BOS, EOS, UNK, QUESTION, ANSWER]


def _words() -> list[str]:
    words = ["a", "to", "the", "left", "of", "above", ",", "and", "?"]
    words += list(shapes.SIZES) + list(shapes.COLORS) + list(shapes.SHAPES)
    words += "what color is shape object how many shapes are there small or large".split()
    words += list(shapes.NUMBERS) + ["yes", "no"]
    words += [UNKNOWN] + OOD_CAPTION.split()
    seen, out = set(), []
    for w in words:
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


TOKENS = SPECIALS + _words()
IDS = {t: i for i, t in enumerate(TOKENS)}
PAD_ID, BOS_ID, EOS_ID, UNK_ID, QUESTION_ID, ANSWER_ID = (IDS[t] for t in SPECIALS)


def _is_punct(ch: str) -> bool:
    o = ord(ch)
    return 33 <= o <= 47 or 58 <= o <= 64 or 91 <= o <= 96 or 123 <= o <= 126 or unicodedata.category(ch).startswith("P")


def words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks, split as BertPreTokenizer does: at white
    space, and around every punctuation character (ASCII symbols count as punctuation)."""
    out, cur = [], []
    for ch in text.lower():
        if ch.isspace() or _is_punct(ch):
            if cur:
                out.append("".join(cur))
                cur = []
            if not ch.isspace():
                out.append(ch)
        else:
            cur.append(ch)
    if cur:
        out.append("".join(cur))
    return out


def encode(text: str) -> list[int]:
    return [IDS.get(w, UNK_ID) if len(w) <= 100 else UNK_ID for w in words(text)]


def decode(ids) -> str:
    words = [TOKENS[i] for i in ids if TOKENS[i] not in SPECIALS]
    return " ".join(words).replace(" ,", ",").replace(" ?", "?")


def caption_prompt() -> list[int]:
    return [BOS_ID]


def question_prompt(question: str) -> list[int]:
    return [BOS_ID, QUESTION_ID] + encode(question) + [ANSWER_ID]


def continuation_prompt(prefix: str) -> list[int]:
    return [BOS_ID] + encode(prefix)


def tokenizer_json() -> dict:
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": IDS[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}
            for t in SPECIALS
        ],
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": None,
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {
            "type": "WordPiece",
            "unk_token": UNK,
            "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100,
            "vocab": dict(IDS),
        },
    }


def tokenizer_config_json(max_length: int) -> dict:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": PAD,
        "unk_token": UNK,
        "additional_special_tokens": [QUESTION, ANSWER],
        "model_max_length": max_length,
        "clean_up_tokenization_spaces": True,
        "padding_side": "left",
    }


def write(folder: str, max_length: int) -> None:
    with open(f"{folder}/tokenizer.json", "w") as f:
        json.dump(tokenizer_json(), f, indent=1)
    with open(f"{folder}/tokenizer_config.json", "w") as f:
        json.dump(tokenizer_config_json(max_length), f, indent=1)
