#!/usr/bin/env python3
"""Independent reference for BPE tokenizer.json files, following the pipeline of Hugging Face's
`tokenizers` library step by step (the Python package itself is not available here):

  1. added tokens whose "normalized" is false are cut out of the raw text (leftmost-longest,
     the search going on after each match; lstrip / rstrip / single_word);
  2. each remaining stretch is normalised (NFC/NFD/NFKC/NFKD, Replace, Prepend, Sequence), then
     the added tokens whose "normalized" is true are cut out of it;
  3. the pre-tokenizer cuts it into words (Split with its five behaviours and invert, ByteLevel
     with add_prefix_space / use_regex and the bytes-to-characters mapping, Sequence);
  4. the BPE model turns each word into ids: ignore_merges, then one symbol per character (a
     character missing from the vocabulary becomes <0xXX> pieces with byte_fallback, else unk,
     fused with fuse_unk), then merges one at a time, always the adjacent pair with the lowest
     rank, the leftmost of equals;
  5. the TemplateProcessing post-processor adds its special tokens (reported as "prefix");
  decoding maps ids to pieces (added tokens first) and runs the decoder steps (ByteLevel,
  Replace, ByteFallback, Fuse, Strip, Sequence; none: pieces joined with spaces).

Written for clarity rather than speed: the merge loop looks at every pair of the word after
each merge.

  ref_hf_tokenizer.py --tokenizer FILE --input FILE

FILE holds {"encode": [strings], "decode": [[ids]]} (either may be absent); the answer is
{"ids": [[ids] per string], "decoded": [string per id list], "prefix": [ids the post-processor
puts before a text]}.

A lone surrogate U+DC80..U+DCFF in an input string stands for one byte that is not valid UTF-8
(Python's surrogateescape): it is an "other" character to the patterns and its byte to
byte-level BPE and to byte fallback.
"""
import argparse
import json
import os
import sys
import unicodedata

import regex

# The GPT-2 reference's byte-to-character table: byte-level BPE is the same in both files.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_gpt2_bpe import bytes_to_unicode  # noqa: E402

GPT2_PATTERN = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
# As Rust's regex means them: $ only at the very end (\Z), \w and \s by Unicode properties.
WORD_AT_END = regex.compile(r"\w\Z")
WORD_AT_START = regex.compile(r"\A\w")
SPACES_AT_END = regex.compile(r"\s*\Z")
SPACES_AT_START = regex.compile(r"\A\s*")


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}


def utf8(s):
    return s.encode("utf-8", "surrogateescape")


def compile_pattern(p):
    """A Split / Replace pattern: {"String": s} is literal, {"Regex": r} a regex."""
    if "String" in p:
        return regex.compile(regex.escape(p["String"])) if p["String"] else None
    return regex.compile(p["Regex"])


def find_matches(pattern, text):
    """(start, end, is_match) stretches covering text, as a pattern split sees them."""
    if not text:
        return [(0, 0, False)]
    out, prev = [], 0
    if pattern is not None:
        for m in pattern.finditer(text):
            if m.start() != prev:
                out.append((prev, m.start(), False))
            out.append((m.start(), m.end(), True))
            prev = m.end()
    if prev != len(text):
        out.append((prev, len(text), False))
    return out


# ---- normalizers ----------------------------------------------------------------------------

def make_normalizer(spec):
    if spec is None:
        return lambda s: s
    kind = spec["type"]
    if kind == "Sequence":
        steps = [make_normalizer(n) for n in spec["normalizers"]]

        def run(s):
            for step in steps:
                s = step(s)
            return s
        return run
    if kind in ("NFC", "NFD", "NFKC", "NFKD"):
        return lambda s: unicodedata.normalize(kind, s)
    if kind == "Replace":
        pattern, content = compile_pattern(spec["pattern"]), spec["content"]
        if pattern is None:
            return lambda s: s
        return lambda s: pattern.sub(lambda m: content, s)
    if kind == "Prepend":
        return lambda s: spec["prepend"] + s if s else s
    raise SystemExit("reference: normalizer %s not implemented" % kind)


# ---- pre-tokenizers -------------------------------------------------------------------------

def split_by_behaviour(parts, behaviour):
    """parts: (start, end, is_match); returns the kept (start, end) stretches."""
    if behaviour == "Isolated":
        return [(a, b) for a, b, _ in parts]
    if behaviour == "Removed":
        return [(a, b) for a, b, m in parts if not m]
    out, previous = [], False
    if behaviour == "Contiguous":
        for a, b, m in parts:
            if m == previous and out:
                out[-1] = (out[-1][0], b)
            else:
                out.append((a, b))
            previous = m
        return out
    if behaviour == "MergedWithPrevious":
        for a, b, m in parts:
            if m and not previous and out:
                out[-1] = (out[-1][0], b)
            else:
                out.append((a, b))
            previous = m
        return out
    if behaviour == "MergedWithNext":
        for a, b, m in reversed(parts):
            if m and not previous and out:
                out[-1] = (a, out[-1][1])
            else:
                out.append((a, b))
            previous = m
        return list(reversed(out))
    raise SystemExit("reference: split behaviour %s not implemented" % behaviour)


def make_pre_tokenizer(spec):
    """Returns (function from a list of words to a list of words, whether words end byte-level)."""
    if spec is None:
        return (lambda words: words), False
    kind = spec["type"]
    if kind == "Sequence":
        steps = [make_pre_tokenizer(p) for p in spec["pretokenizers"]]

        def run(words):
            for step, _ in steps:
                words = step(words)
            return words
        return run, bool(steps) and steps[-1][1]
    if kind == "Split":
        pattern = compile_pattern(spec["pattern"])
        invert, behaviour = spec.get("invert", False), spec["behavior"]

        def split(words):
            out = []
            for w in words:
                parts = [(a, b, m != invert) for a, b, m in find_matches(pattern, w)]
                out.extend(w[a:b] for a, b in split_by_behaviour(parts, behaviour) if b > a)
            return out
        return split, False
    if kind == "ByteLevel":
        prefix = spec.get("add_prefix_space", False)
        use_regex = spec.get("use_regex", True)

        def byte_level(words):
            out = []
            for w in words:
                if prefix and not w.startswith(" "):
                    w = " " + w
                pieces = GPT2_PATTERN.findall(w) if use_regex else [w]
                out.extend("".join(BYTE_TO_CHAR[b] for b in utf8(p)) for p in pieces if p)
            return out
        return byte_level, True
    raise SystemExit("reference: pre-tokenizer %s not implemented" % kind)


# ---- the BPE model --------------------------------------------------------------------------

class Bpe:
    def __init__(self, spec):
        if spec["type"] != "BPE":
            raise SystemExit("reference: model %s not implemented" % spec["type"])
        self.vocab = spec["vocab"]
        self.ranks, self.merged = {}, {}
        for rank, m in enumerate(spec.get("merges") or []):
            a, b = m.split(" ") if isinstance(m, str) else m
            pair = (self.vocab[a], self.vocab[b])
            self.ranks[pair] = rank  # a pair listed twice keeps its last rank
            self.merged[pair] = self.vocab[a + b]
        unk = spec.get("unk_token")
        self.unk = self.vocab[unk] if unk is not None else None
        self.ignore_merges = spec.get("ignore_merges", False)
        self.byte_fallback = spec.get("byte_fallback", False)
        self.fuse_unk = spec.get("fuse_unk", False)

    def symbols(self, word):
        out, pending_unk = [], None
        for ch in word:
            if ch in self.vocab:
                if pending_unk is not None:
                    out.append(pending_unk)
                    pending_unk = None
                out.append(self.vocab[ch])
                continue
            if self.byte_fallback:
                names = ["<0x%02X>" % b for b in utf8(ch)]
                if all(n in self.vocab for n in names):
                    out.extend(self.vocab[n] for n in names)
                    continue
            if self.unk is None:
                continue  # no unk token: the character is dropped
            if pending_unk is not None and not self.fuse_unk:
                out.append(pending_unk)
            pending_unk = self.unk
        if pending_unk is not None:
            out.append(pending_unk)
        return out

    def tokenize(self, word):
        if self.ignore_merges and word in self.vocab:
            return [self.vocab[word]]
        syms = self.symbols(word)
        # rank[i] is the rank of the pair (syms[i], syms[i + 1]); min() and index() find the
        # lowest rank and its leftmost pair.
        none = float("inf")

        def rank_at(i):
            return self.ranks.get((syms[i], syms[i + 1]), none)
        rank = [rank_at(i) for i in range(len(syms) - 1)]
        while rank:
            best = min(rank)
            if best == none:
                break
            i = rank.index(best)
            syms[i:i + 2] = [self.merged[(syms[i], syms[i + 1])]]
            del rank[i]
            if i > 0:
                rank[i - 1] = rank_at(i - 1)
            if i < len(syms) - 1:
                rank[i] = rank_at(i)
        return syms


# ---- added tokens ---------------------------------------------------------------------------

class AddedTokens:
    def __init__(self, tokens):
        self.by_content = {}
        for t in tokens:
            self.by_content[t["content"]] = t
        self.by_first = {}
        for content in sorted(self.by_content, key=len, reverse=True):
            self.by_first.setdefault(content[0], []).append(content)

    def longest_at(self, text, i):
        for content in self.by_first.get(text[i], ()):
            if text.startswith(content, i):
                return content
        return None

    def split(self, text):
        """[(stretch, id or None)] covering text."""
        out, done, i = [], 0, 0
        while i < len(text):
            content = self.longest_at(text, i) if self.by_first else None
            if content is None:
                i += 1
                continue
            t = self.by_content[content]
            start, stop = i, i + len(content)
            i = stop
            if t.get("single_word", False):
                before = start > 0 and WORD_AT_END.search(text[:start])
                after = stop < len(text) and WORD_AT_START.search(text[stop:])
                if before or after:
                    continue
            if t.get("lstrip", False):
                start = max(SPACES_AT_END.search(text[:start]).start(), done)
            if t.get("rstrip", False):
                stop += SPACES_AT_START.search(text[stop:]).end()
            if start > done:
                out.append((text[done:start], None))
            out.append((text[start:stop], t["id"]))
            done = i = stop
        if done < len(text):
            out.append((text[done:], None))
        return out


# ---- decoders -------------------------------------------------------------------------------

def byte_fallback_value(piece):
    if len(utf8(piece)) == 6 and piece.startswith("<0x") and piece.endswith(">"):
        try:
            return int(piece[3:5], 16)
        except ValueError:
            return None
    return None


def make_decoder(spec):
    """A function from a list of pieces to a list of pieces (decode_chain)."""
    kind = spec["type"]
    if kind == "Sequence":
        steps = [make_decoder(d) for d in spec["decoders"]]

        def run(pieces):
            for step in steps:
                pieces = step(pieces)
            return pieces
        return run
    if kind == "ByteLevel":
        def byte_level(pieces):
            data = bytearray()
            for p in pieces:
                if all(c in CHAR_TO_BYTE for c in p):
                    data.extend(CHAR_TO_BYTE[c] for c in p)
                else:
                    data.extend(utf8(p))
            return [bytes(data).decode("utf-8", errors="replace")]
        return byte_level
    if kind == "Replace":
        pattern, content = compile_pattern(spec["pattern"]), spec["content"]
        return lambda pieces: [pattern.sub(lambda m: content, p) if pattern else p
                               for p in pieces]
    if kind == "ByteFallback":
        def byte_fallback(pieces):
            out, run = [], []

            def flush():
                if run:
                    try:
                        out.append(bytes(run).decode("utf-8"))
                    except UnicodeDecodeError:
                        out.extend(["\ufffd"] * len(run))
                    run.clear()
            for p in pieces:
                value = byte_fallback_value(p)
                if value is None:
                    flush()
                    out.append(p)
                else:
                    run.append(value)
            flush()
            return out
        return byte_fallback
    if kind == "Fuse":
        return lambda pieces: ["".join(pieces)]
    if kind == "Strip":
        content, start, stop = spec["content"], spec["start"], spec["stop"]

        def strip(pieces):
            out = []
            for p in pieces:
                a, b = 0, len(p)
                while a < start and a < b and p[a] == content:
                    a += 1
                n = 0
                while n < stop and b > a and p[b - 1] == content:
                    b -= 1
                    n += 1
                out.append(p[a:b])
            return out
        return strip
    raise SystemExit("reference: decoder %s not implemented" % kind)


# ---- the whole pipeline ---------------------------------------------------------------------

class Tokenizer:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
        self.normalize = make_normalizer(spec.get("normalizer"))
        self.pre_tokenize, _ = make_pre_tokenizer(spec.get("pre_tokenizer"))
        self.model = Bpe(spec["model"])
        added = spec.get("added_tokens") or []
        raw = [t for t in added if not t.get("normalized", not t.get("special", False))]
        normalized = []
        for t in added:
            if t.get("normalized", not t.get("special", False)):
                t = dict(t, content=self.normalize(t["content"]))
                if t["content"]:
                    normalized.append(t)
        self.raw_added, self.normalized_added = AddedTokens(raw), AddedTokens(normalized)
        self.added_by_id = {t["id"]: t["content"] for t in added}
        self.vocab_by_id = {i: p for p, i in self.model.vocab.items()}
        decoder = spec.get("decoder")
        self.decode_chain = make_decoder(decoder) if decoder else None
        self.prefix = template_prefix(spec.get("post_processor"))

    def encode(self, text):
        ids = []
        for stretch, token in self.raw_added.split(text):
            if token is not None:
                ids.append(token)
                continue
            for inner, token2 in self.normalized_added.split(self.normalize(stretch)):
                if token2 is not None:
                    ids.append(token2)
                    continue
                for word in self.pre_tokenize([inner]):
                    if word:
                        ids.extend(self.model.tokenize(word))
        return ids

    def decode(self, ids):
        pieces = []
        for i in ids:
            if i in self.added_by_id:
                pieces.append(self.added_by_id[i])
            elif i in self.vocab_by_id:
                pieces.append(self.vocab_by_id[i])
        if self.decode_chain is None:
            return " ".join(pieces)
        return "".join(self.decode_chain(pieces))


def template_prefix(spec):
    """Ids a TemplateProcessing puts before the single sequence ($A)."""
    if spec is None:
        return []
    if spec["type"] == "Sequence":
        prefix = []
        for p in spec["processors"]:
            if p["type"] == "TemplateProcessing":
                prefix = template_prefix(p)
        return prefix
    if spec["type"] != "TemplateProcessing":
        return []
    prefix = []
    for item in spec["single"]:
        if "Sequence" in item:
            break
        prefix.extend(spec["special_tokens"][item["SpecialToken"]["id"]]["ids"])
    return prefix


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer", required=True, help="tokenizer.json")
    ap.add_argument("--input", required=True, help="JSON file (see above)")
    args = ap.parse_args()
    tok = Tokenizer(args.tokenizer)
    with open(args.input, encoding="utf-8", errors="surrogatepass") as f:
        job = json.load(f)
    out = {"ids": [tok.encode(x) for x in job.get("encode", [])],
           "decoded": [tok.decode(x) for x in job.get("decode", [])],
           "prefix": tok.prefix}
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
