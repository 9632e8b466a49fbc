"""The word-level vocabulary, written as a Hugging Face WordPiece tokenizer.json.

WordPiece with whole words only: @huggingface/tokenizers loads it (it has no WordLevel),
BertPreTokenizer splits punctuation so ',' and '?' are their own tokens, and the
WordPiece decoder's cleanup glues them back ('a , b ?' -> 'a, b?').
"""
from __future__ import annotations

import json
import re

import shapes

PAD, BOS, EOS, UNK, QUESTION, ANSWER = "<pad>", "<s>", "</s>", "<unk>", "<question>", "<answer>"
SPECIALS = [PAD, BOS, EOS, UNK, QUESTION, ANSWER]


def _words() -> list[str]:
    words = ["a", "to", "the", "left", "of", "above", ",", "and", "?"]
    words += list(shapes.SIZES) + list(shapes.COLORS) + list(shapes.SHAPES)
    words += "what color is shape object how many shapes are there small or large".split()
    words += list(shapes.NUMBERS) + ["yes", "no"]
    seen, out = set(), []
    for w in words:
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


TOKENS = SPECIALS + _words()
IDS = {t: i for i, t in enumerate(TOKENS)}
PAD_ID, BOS_ID, EOS_ID, UNK_ID, QUESTION_ID, ANSWER_ID = (IDS[t] for t in SPECIALS)
_SPLIT = re.compile(r"\w+|[^\w\s]")


def encode(text: str) -> list[int]:
    return [IDS.get(w, UNK_ID) for w in _SPLIT.findall(text.lower())]


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
