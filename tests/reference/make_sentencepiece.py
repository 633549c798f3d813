#!/usr/bin/env python3
"""Trains a tiny SentencePiece BPE model with the sentencepiece Python package and prints what the
package itself makes of some strings, as the reference for our libsentencepiece wrapper.

  make_sentencepiece.py --out DIR --input FILE

Writes DIR/tokenizer.model (trained on a few hundred generated sentences, vocabulary ~100).
FILE holds a JSON list of strings. Prints one JSON object: "ids" (sp.encode of each string),
"decoded" (sp.decode of those ids), "pieces" (every piece by id), "bos", "eos", "unk".
"""
import argparse
import json
import os
import random
import sys

import sentencepiece as spm


def sentences(count, seed=7):
    rng = random.Random(seed)
    subjects = ["the cat", "a dog", "my friend", "the old man", "lily", "tom", "the bird"]
    verbs = ["saw", "liked", "found", "wanted", "played with", "looked at", "helped"]
    objects = ["the ball", "a red box", "the tree", "some water", "the little boat", "a toy"]
    endings = [".", "!", "?", ", and they were happy.", " in the park."]
    for _ in range(count):
        s = f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}{rng.choice(endings)}"
        yield s[0].upper() + s[1:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--input", required=True)
    args = ap.parse_args()
    corpus = os.path.join(args.out, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write("\n".join(sentences(400)) + "\n")
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=os.path.join(args.out, "tokenizer"), vocab_size=100,
        model_type="bpe", character_coverage=1.0, num_threads=1, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(args.out, "tokenizer.model"))
    with open(args.input, encoding="utf-8") as f:
        texts = json.load(f)
    ids = [sp.encode(t) for t in texts]
    json.dump({"ids": ids, "decoded": [sp.decode(x) for x in ids],
               "pieces": [sp.id_to_piece(i) for i in range(sp.get_piece_size())],
               "bos": sp.bos_id(), "eos": sp.eos_id(), "unk": sp.unk_id()}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
