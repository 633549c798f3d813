#!/usr/bin/env python3
"""Independent reference for GPT-2 byte-level BPE, following the algorithm of OpenAI's original
encoder: split the text with GPT-2's regex, turn each piece's UTF-8 bytes into the printable
characters of bytes_to_unicode, then repeatedly merge the adjacent pair with the lowest rank in
merges.txt (every occurrence, left to right) until no ranked pair is left.

  ref_gpt2_bpe.py --dir DIR --input FILE           JSON list of strings -> JSON list of id lists
  ref_gpt2_bpe.py --dir DIR --input FILE --decode  JSON list of id lists -> JSON list of strings

A lone surrogate U+DC80..U+DCFF in an input string stands for one byte that is not valid UTF-8
(Python's surrogateescape), so the caller can pass arbitrary bytes through JSON. Decoding joins
the bytes and repairs them with errors='replace', as the original decoder does.
"""
import argparse
import json
import os
import sys

import regex

PATTERN = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def bytes_to_unicode():
    """Each byte maps to a printable character: printable Latin-1 bytes to themselves, the other
    68 to U+0100 onwards, in byte order."""
    printable = set(range(0x21, 0x7F)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
    table, moved = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + moved)
            moved += 1
    return table


def get_pairs(word):
    return {(word[i], word[i + 1]) for i in range(len(word) - 1)}


class Encoder:
    def __init__(self, directory):
        with open(os.path.join(directory, "vocab.json"), encoding="utf-8") as f:
            self.encoder = json.load(f)
        self.decoder = {v: k for k, v in self.encoder.items()}
        with open(os.path.join(directory, "merges.txt"), encoding="utf-8") as f:
            lines = f.read().split("\n")
        if lines and lines[0].startswith("#version"):
            lines = lines[1:]
        merges = [tuple(line.split()) for line in lines if line.strip()]
        # A pair listed twice keeps its last rank, as dict() over the list gives.
        self.ranks = dict(zip(merges, range(len(merges))))
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {c: b for b, c in self.byte_encoder.items()}
        self.cache = {}

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token)
        pairs = get_pairs(word)
        while pairs:
            bigram = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if bigram not in self.ranks:
                break
            first, second = bigram
            merged, i = [], 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    merged.extend(word[i:])
                    break
                merged.extend(word[i:j])
                i = j
                if i < len(word) - 1 and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
            if len(word) == 1:
                break
            pairs = get_pairs(word)
        self.cache[token] = word
        return word

    def encode(self, text):
        ids = []
        for piece in PATTERN.findall(text):
            raw = piece.encode("utf-8", "surrogateescape")
            mapped = "".join(self.byte_encoder[b] for b in raw)
            ids.extend(self.encoder[p] for p in self.bpe(mapped))
        return ids

    def decode(self, ids):
        text = "".join(self.decoder[i] for i in ids)
        return bytearray(self.byte_decoder[c] for c in text).decode("utf-8", errors="replace")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True, help="directory with vocab.json and merges.txt")
    ap.add_argument("--input", required=True, help="JSON file (see above)")
    ap.add_argument("--decode", action="store_true", help="decode id lists instead of encoding")
    args = ap.parse_args()
    enc = Encoder(args.dir)
    with open(args.input, encoding="utf-8", errors="surrogatepass") as f:
        items = json.load(f)
    out = [enc.decode(x) for x in items] if args.decode else [enc.encode(x) for x in items]
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
