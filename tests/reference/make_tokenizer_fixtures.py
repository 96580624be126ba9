#!/usr/bin/env python3
"""Reference outputs of HuggingFace `tokenizers` for the data-layer tokenizer tests.

Trains a small byte-level BPE (NFC, ByteLevel, BPE, like OLMoE's tokenizer) on a multilingual
corpus written below, saves its tokenizer.json, and records for each test string the ids HF
produces and HF's decode of them. Also records HF's trained merges so that our trainer can be
compared with HF's BpeTrainer on the same corpus.
  pip install tokenizers && python3 tests/reference/make_tokenizer_fixtures.py
"""
import json
import os
import random
import unicodedata

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tokenizer")

CORPUS = [
    "The quick brown fox jumps over the lazy dog. It's 2024; we've seen 1,234 foxes!",
    "They'll say it's fine, I'd agree, you're right, we're done, I'm here.",
    "Café déjà vu: naïve façade, résumé, coöperate, Ångström, smørrebrød, Łódź, Žluťoučký kůň.",
    "Съешь же ещё этих мягких французских булок, да выпей чаю. Москва 2023 год.",
    "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. Η γλώσσα μου έδωσαν ελληνική.",
    "我能吞下玻璃而不伤身体。東京は日本の首都です。안녕하세요 세계",
    "أنا قادر على أكل الزجاج و هذا لا يؤلمني. مرحبا بالعالم",
    "मैं काँच खा सकता हूँ और मुझे उससे कोई चोट नहीं पहुंचती. नमस्ते दुनिया",
    "Emoji: 😀 😃 🎉 👍🏽 🇩🇪 ❤️ 🚀🚀🚀 and more 🤖.",
    "def main():\n    x = 42\n\tif x > 3:\n        return x ** 2\n\n\n",
    "Numbers 0123456789 3.14159 2,718 1e-9 100% $5.99 #1 @user",
    "    four spaces  two spaces        eight spaces\t\ttabs\n\nnewlines   \n",
] * 20 + [
    "the the the the and and of of to to in in is is " * 5,
    "прием прием привет привет мир мир " * 5,
]

STRINGS = [
    "Hello world",
    "Hello  world   with    runs",
    " leading space",
    "trailing space ",
    "It's we've they'll I'd you're I'm",
    "Café déjà vu",
    "Cafe\u0301 de\u0301ja\u0300 vu",  # decomposed: NFC must compose to the line above
    "A\u030a ngstro\u0308m",
    "Съешь же ещё этих мягких булок",
    "Ξεσκεπάζω την ψυχοφθόρα",
    "我能吞下玻璃而不伤身体。",
    "東京は日本の首都です",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "😀🎉 👍🏽 🇩🇪 ❤️",
    "tabs\tand\t\ttabs",
    "new\nlines\n\n\nhere\r\n",
    "digits 0123456789 and 3.14159",
    "a" + " " * 2 + "b",
    "a" + " " * 5 + "b",
    "a" + " " * 13 + "b",
    "a" + " " * 30 + "b",
    " " * 7,
    "<|endoftext|>",
    "first doc<|endoftext|>second doc",
    "<|padding|><|padding|>pad",
    "text <|endoftext|> <|padding|>",
    "<|endoftext",
    "def f(x):\n    return x ** 2\n",
    "unseen: Ω≈ç√∫ ∑ ゼ ﷺ",
    "",
]


def byte_chars():
    """GPT-2's byte -> printable character map, which ByteLevel's vocabularies are written in."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(
        range(0xAE, 0xFF + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


BYTE_CHAR = byte_chars()


def main():
    os.makedirs(OUT, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1000,
        min_frequency=2,
        show_progress=False,
        special_tokens=["<|endoftext|>", "<|padding|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    trained = json.loads(tok.to_str())["model"]
    # Like OLMoE's runs-of-spaces tokens: added, not special, matched after normalisation.
    tok.add_tokens([AddedToken(" " * n, normalized=True) for n in (8, 4, 2)])
    tok.save(os.path.join(OUT, "tokenizer.json"))

    # The same merges in a random order with some repeated: ranks no longer follow the order
    # of training, which shows whether merges are applied in HF's (rank, position) order and a
    # repeated merge takes its last rank.
    doc = json.loads(tok.to_str())
    merges = doc["model"]["merges"]
    random.Random(0).shuffle(merges)
    merges.extend(merges[:50])
    with open(os.path.join(OUT, "tokenizer_shuffled_merges.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False)
    shuffled = Tokenizer.from_file(os.path.join(OUT, "tokenizer_shuffled_merges.json"))

    # A vocabulary that cannot spell some bytes, with an unk_token: "'" (one byte) and the two
    # bytes of "é" (a run, which fuse_unk makes one unk). The vocab is renumbered without gaps
    # and saved by HF, which numbers the added tokens after it.
    doc = json.loads(tok.to_str())
    unknown = {BYTE_CHAR[b] for b in (ord("'"), 0xC3, 0xA9)}
    kept = [t for t, _ in sorted(doc["model"]["vocab"].items(), key=lambda kv: kv[1])
            if not unknown & set(t)]
    doc["model"]["vocab"] = {t: i for i, t in enumerate(kept + ["<unk>"])}
    doc["model"]["merges"] = [m for m in doc["model"]["merges"] if not unknown & set("".join(m))]
    doc["model"]["unk_token"] = "<unk>"
    unk = Tokenizer.from_str(json.dumps(doc))
    unk.save(os.path.join(OUT, "tokenizer_unk.json"))
    doc = json.loads(unk.to_str())
    doc["model"]["fuse_unk"] = True
    unk_fused = Tokenizer.from_str(json.dumps(doc))

    cases = []
    for s in STRINGS:
        ids = tok.encode(s, add_special_tokens=False).ids
        cases.append({"text": s, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False),
                      "ids_shuffled_merges": shuffled.encode(s, add_special_tokens=False).ids,
                      "ids_unk": unk.encode(s, add_special_tokens=False).ids,
                      "ids_unk_fused": unk_fused.encode(s, add_special_tokens=False).ids})
    # The decomposed/composed pair must really differ before NFC.
    assert unicodedata.normalize("NFC", STRINGS[6]) == STRINGS[5] != STRINGS[6]
    with open(os.path.join(OUT, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False)
    with open(os.path.join(OUT, "corpus.json"), "w", encoding="utf-8") as f:
        json.dump({"texts": CORPUS, "vocab_size": 1000, "min_frequency": 2,
                   "special_tokens": ["<|endoftext|>", "<|padding|>"],
                   "vocab": trained["vocab"], "merges": trained["merges"]}, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
