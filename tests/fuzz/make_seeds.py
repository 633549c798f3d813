#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/): small valid inputs of
each format, hand-made here or taken from the project's own demo (resources/demo). Nothing
fetched from elsewhere. Run from anywhere; it rewrites the seed files it owns.

  tests/fuzz/make_seeds.py
"""
import io
import json
import os
import re
import shutil
import sqlite3
import struct
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEMO = os.path.join(ROOT, "resources", "demo")


def out(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, raw bytes)]"""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def floats(*v):
    return struct.pack("<%df" % len(v), *v)


def npy(descr, shape, raw, version=1):
    d = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, repr(tuple(shape)))
    pre = 10 if version == 1 else 12
    d += " " * ((64 - (pre + len(d) + 1) % 64) % 64) + "\n"
    lenfield = struct.pack("<H", len(d)) if version == 1 else struct.pack("<I", len(d))
    return b"\x93NUMPY" + bytes([version, 0]) + lenfield + d.encode() + raw


def seeds_safetensors():
    out("safetensors", "f32.safetensors", safetensors(
        [("w", "F32", [2, 3], floats(1, 2, 3, 4, 5, 6)), ("b", "F32", [3], floats(0.5, -1, 2))],
        {"format": "pt"}))
    out("safetensors", "mixed.safetensors", safetensors(
        [("h", "F16", [2], struct.pack("<2e", 1.5, -2)), ("bf", "BF16", [2], b"\x80\x3f\x00\x40"),
         ("d", "F64", [1], struct.pack("<d", 3.25)), ("i", "I64", [2], struct.pack("<2q", 7, -7)),
         ("i32", "I32", [1], struct.pack("<i", 9)), ("u", "U8", [3], b"\x01\x02\x03"),
         ("ok", "BOOL", [2], b"\x01\x00"), ("empty", "F32", [0, 4], b""), ("scalar", "F32", [], floats(4))]))
    out("safetensors", "empty.safetensors", safetensors([]))


def seeds_npz():
    out("npz", "array.npy", npy("<f4", [2, 2], floats(1, 2, 3, 4)))
    out("npz", "array-v2.npy", npy("<i8", [3], struct.pack("<3q", 1, 2, 3), version=2))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("W_enc.npy", npy("<f4", [2, 3], floats(*range(6))))
        z.writestr("threshold.npy", npy("<f2", [3], struct.pack("<3e", 0.1, 0.2, 0.3)))
        z.writestr("b_dec.npy", npy("|u1", [2], b"\x01\x02"))
    out("npz", "params.npz", buf.getvalue())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("W_dec.npy", npy("<f8", [2], struct.pack("<2d", 1, 2)))
    out("npz", "compressed.npz", buf.getvalue())


def seeds_sae_config():
    for d in sorted(os.listdir(os.path.join(DEMO, "saes"))):
        shutil.copy(os.path.join(DEMO, "saes", d, "cfg.json"), os.path.join(HERE, "corpus", "sae_config", d + ".json"))
    out("sae_config", "flat-topk.json", json.dumps({
        "architecture": "topk", "d_in": 16, "d_sae": 64, "k": 4, "hook_name": "blocks.1.hook_resid_post",
        "hook_layer": 1, "model_name": "gpt2", "context_size": 128, "normalize_activations": "none",
        "activation_fn_str": "topk", "apply_b_dec_to_input": False}))
    out("sae_config", "flat-jumprelu-norm.json", json.dumps({
        "architecture": "jumprelu", "d_in": 16, "d_sae": 32, "hook_point": "blocks.0.hook_mlp_out",
        "model_name": "gemma-2-2b", "normalize_activations": "expected_average_only_in",
        "norm_scaling_factor": 2.5, "activation_fn": "relu", "prepend_bos": True}))
    out("sae_config", "llamascope.json", json.dumps({
        "d_model": 16, "expansion_factor": 4, "hook_point_in": "blocks.3.hook_resid_post",
        "hook_point_out": "blocks.3.hook_resid_post", "act_fn": "jumprelu", "jump_relu_threshold": 0.5,
        "norm_activation": "dataset-wise",
        "dataset_average_activation_norm": {"in": 4.0, "out": 4.0}, "top_k": 8}))
    out("sae_config", "llamascope-transcoder.json", json.dumps({
        "d_model": 16, "d_sae": 32, "hook_point_in": "blocks.2.ln2.hook_normalized",
        "hook_point_out": "blocks.2.hook_mlp_out", "act_fn": "topk", "top_k": 4,
        "norm_activation": "inference", "apply_decoder_bias_to_pre_encoder": False}))
    out("sae_config", "gemmascope-path.txt", "gemma-scope-2b-pt-res/layer_12/width_16k/average_l0_82/params.npz\n")


def seeds_tokenizers():
    # GPT-2 style byte-level BPE: vocab.json \0 merges.txt
    vocab = {"<|endoftext|>": 0}
    for ch in "abcdehilnorstw":
        vocab[ch] = len(vocab)
    for p in ["Ġ", "Ġt", "he", "Ġthe", "ll", "llo", "Ġw", "or", "ld", "Ġworld", "Ã", "©"]:
        vocab[p] = len(vocab)
    merges = "#version: 0.2\nĠ t\nh e\nĠt he\nl l\nll o\nĠ w\no r\nl d\nĠw or\nĠwor ld\n"
    vocab["Ġwor"] = len(vocab)
    out("gpt2_bpe", "gpt2.bin", json.dumps(vocab, ensure_ascii=False) + "\0" + merges)
    out("gpt2_bpe", "empty-merges.bin", json.dumps({"a": 0, "b": 1}) + "\0#version: 0.2\n")

    byte_level = {
        "version": "1.0",
        "added_tokens": [{"id": 0, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
                  "vocab": vocab, "merges": [m for m in merges.splitlines()[1:]]},
    }
    out("tokenizer_json", "byte-level.json", json.dumps(byte_level, ensure_ascii=False))
    sp_vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "▁": 3, "▁t": 4, "h": 5, "e": 6, "▁the": 7, "a": 8, "t": 9, "he": 10}
    for b in range(256):
        sp_vocab["<0x%02X>" % b] = len(sp_vocab)
    llama2 = {
        "version": "1.0",
        "added_tokens": [{"id": 1, "content": "<s>", "special": True, "normalized": False,
                          "single_word": False, "lstrip": False, "rstrip": False}],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": True, "fuse_unk": True,
                  "vocab": sp_vocab, "merges": [["▁", "t"], ["h", "e"], ["▁t", "he"]]},
    }
    out("tokenizer_json", "llama2-style.json", json.dumps(llama2, ensure_ascii=False))
    split = dict(byte_level)
    split["normalizer"] = {"type": "NFC"}
    split["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
         "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}
    out("tokenizer_json", "split-regex.json", json.dumps(split, ensure_ascii=False))


def seeds_spm():
    os.makedirs(os.path.join(HERE, "corpus", "spm"), exist_ok=True)
    shutil.copy(os.path.join(DEMO, "model", "tokenizer.model"), os.path.join(HERE, "corpus", "spm", "demo.model"))


def seeds_model_config():
    shutil.copy(os.path.join(DEMO, "model", "config.json"), os.path.join(HERE, "corpus", "model_config", "demo.json"))
    out("model_config", "gpt2.json", json.dumps({
        "model_type": "gpt2", "n_layer": 2, "n_embd": 16, "n_head": 2, "n_positions": 32, "vocab_size": 50,
        "n_inner": None, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5}))
    out("model_config", "llama3.json", json.dumps({
        "model_type": "llama", "num_hidden_layers": 2, "hidden_size": 16, "num_attention_heads": 4,
        "num_key_value_heads": 2, "intermediate_size": 32, "vocab_size": 50, "max_position_embeddings": 64,
        "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "hidden_act": "silu", "tie_word_embeddings": True,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 32}, "bos_token_id": 1, "eos_token_id": [2, 3]}))
    out("model_config", "gemma2.json", json.dumps({
        "model_type": "gemma2", "num_hidden_layers": 2, "hidden_size": 16, "num_attention_heads": 2,
        "num_key_value_heads": 1, "head_dim": 8, "intermediate_size": 32, "vocab_size": 50,
        "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "hidden_activation": "gelu_pytorch_tanh",
        "query_pre_attn_scalar": 8, "sliding_window": 16, "attn_logit_softcapping": 50.0,
        "final_logit_softcapping": 30.0, "layer_types": ["sliding_attention", "full_attention"]}))
    out("model_config", "qwen2.json", json.dumps({
        "model_type": "qwen2", "num_hidden_layers": 2, "hidden_size": 16, "num_attention_heads": 2,
        "num_key_value_heads": 2, "intermediate_size": 32, "vocab_size": 50, "max_position_embeddings": 64,
        "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "use_sliding_window": False, "sliding_window": 32,
        "max_window_layers": 2, "tie_word_embeddings": False, "attention_bias": True,
        "rope_scaling": {"type": "linear", "factor": 2.0}}))


def seeds_graph_json():
    nodes = [
        {"node_id": "E_5_0", "feature": 0, "layer": "E", "ctx_idx": 0, "feature_type": "embedding",
         "jsNodeId": "E_5-0", "clerp": "tok", "influence": 0.5},
        {"node_id": "0_3_1", "feature": 6, "layer": "0", "ctx_idx": 1, "feature_type": "cross layer transcoder",
         "jsNodeId": "0_3-1", "clerp": "a feature", "activation": 1.25, "influence": 0.4, "influence_score": 0.3},
        {"node_id": "0_-1_1", "feature": -1, "layer": "0", "ctx_idx": 1, "feature_type": "mlp reconstruction error",
         "jsNodeId": "0_-1-1", "clerp": None},
        {"node_id": "3_7_1", "feature": 7, "layer": "3", "ctx_idx": 1, "feature_type": "logit",
         "jsNodeId": "L_7-1", "clerp": "output", "token_prob": 0.75, "is_target_logit": True},
    ]
    links = [{"source": "E_5_0", "target": "0_3_1", "weight": 0.5},
             {"source": "0_3_1", "target": "3_7_1", "weight": -1.5},
             {"source": "0_-1_1", "target": "3_7_1", "weight": 0.25}]
    g = {"metadata": {"slug": "seed", "scan": "demo", "transcoder_list": ["tc-L0"], "prompt": "a b",
                      "prompt_tokens": ["a", " b"], "node_threshold": 0.8, "schema_version": 1,
                      "circuitscope": {"tokens": [5, 6], "replacement": "transcoder", "sae_ids": ["tc-L0", "tc-L1"],
                                       "layers": 2, "edge_threshold": 0.98, "replacement_score": 0.5,
                                       "completeness_score": 0.75}},
         "qParams": {"pinnedIds": ["0_3_1"], "supernodes": [["group", "0_3_1", "0_-1_1"]], "linkType": "both",
                     "clickedId": "0_3_1", "sg_pos": ""},
         "nodes": nodes, "links": links}
    out("graph_json", "graph.json", json.dumps(g))
    g2 = json.loads(json.dumps(g))
    del g2["metadata"]["circuitscope"]
    g2["qParams"]["pinnedIds"] = "0_3_1,3_7_1"
    g2["qParams"]["supernodes"] = None
    g2["metadata"]["circuitscope"] = {"logit_differences": [{"node_id": "3_7_1", "token": 7, "minus_token": 8}]}
    out("graph_json", "neuronpedia.json", json.dumps(g2))


def seeds_session():
    s = {"format": "circuitscope-session", "version": 1, "model": "resources/demo/model",
         "prompt": "The little dog ran", "max_new_tokens": 3, "greedy": False, "temperature": 0.7,
         "seed": "18446744073709551615", "selection": {"position": 2, "layer": 1, "head": 0, "lens_token": 5},
         "theme": "dark", "window_state": "AAAA/wAAAAD9AAAAAA=="}
    out("session", "plain.csession", json.dumps(s))
    s["steering"] = {"format": "circuitscope-steering", "version": 1, "condition":
                     {"sae": "res-L1", "feature": 3, "threshold": 0.5},
                     "rows": [{"mode": "add", "value": 2.0, "positions": "all", "enabled": True,
                               "conditional": True, "sae": "res-L2", "feature": 1, "label": "dog", "unit": 1.5},
                              {"mode": "clamp", "value": -1, "positions": "0,2-3", "enabled": False,
                               "vector": {"name": "v", "hook": "blocks.1.hook_resid_post", "values": [0.5, -0.25]}}]}
    out("session", "steering.csession", json.dumps(s))


def seeds_index_corpus():
    out("index_corpus", "text.jsonl", '{"text": "The cat sat."}\n{"text": "\\u00e9t\\u00e9 \\ud83d\\ude00"}\n\n')
    out("index_corpus", "tokens.jsonl", '{"tokens": [1, 2, 3, 4]}\n{"tokens": [0]}\n')


def seeds_feature_store():
    src = open(os.path.join(ROOT, "core", "store", "StoreSchema.cpp"), encoding="utf-8").read()
    migrations = re.findall(r'R"SQL\((.*?)\)SQL"', src, re.S)
    app_id = int(re.search(r"kStoreApplicationId = (0x[0-9A-Fa-f]+)",
                           open(os.path.join(ROOT, "core", "store", "StoreSchema.h")).read()).group(1), 16)
    path = os.path.join(HERE, "corpus", "feature_store", "store.db")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        os.remove(path)
    db = sqlite3.connect(path)
    db.execute("PRAGMA page_size=512")
    for m in migrations:
        db.executescript(m)
    db.execute("PRAGMA application_id=%d" % app_id)
    db.execute("PRAGMA user_version=%d" % len(migrations))
    db.execute("INSERT INTO meta VALUES ('model', 'demo'), ('complete', '1'), ('context', '8')")
    db.execute("INSERT INTO saes VALUES ('res-L1', 0, 'saes/res-L1', 'blocks.1.hook_resid_post', '', 'standard', 2, 4, 6)")
    db.executemany("INSERT INTO vocab VALUES (?, ?)", [(i, t) for i, t in enumerate(["<s>", "the", " cat", " sat"])])
    db.execute("INSERT INTO windows VALUES (0, 0, 0, ?)", (struct.pack("<4i", 0, 1, 2, 3),))
    db.execute("INSERT INTO features VALUES ('res-L1', 0, 2.0, 3, 2.0, ?)", (struct.pack("<50q", *([1] * 50)),))
    db.execute("INSERT INTO features VALUES ('res-L1', 1, 0.5, 1, 0.5, ?)", (struct.pack("<50q", *([0] * 50)),))
    db.execute("INSERT INTO examples VALUES ('res-L1', 0, 0, 0, 2.0, 2, 2, 7, 1, ?)", (floats(0.5, 2.0, 1.0),))
    db.execute("INSERT INTO examples VALUES ('res-L1', 0, 1, 0, 1.0, 1, 1, 9, 0, ?)", (floats(1.0, 0.0),))
    db.execute("INSERT INTO weight_facts VALUES ('res-L1', 0, ?, ?)",
               (json.dumps({"positive": [[1, 0.5]], "negative": [[2, -0.5]]}), json.dumps([[1, 0.9]])))
    db.execute("INSERT INTO labels VALUES ('res-L1', 0, 'cats', 'a note')")
    db.execute("INSERT INTO auto_labels VALUES ('res-L1', 1, 'the')")
    db.execute("INSERT INTO label_search (text, sae, idx, source) VALUES ('cats a note', 'res-L1', 0, 'user')")
    db.commit()
    db.execute("VACUUM")
    db.close()
    # A foreign SQLite file and an empty one: refused, never written to.
    foreign = os.path.join(HERE, "corpus", "feature_store", "foreign.db")
    if os.path.exists(foreign):
        os.remove(foreign)
    db = sqlite3.connect(foreign)
    db.execute("PRAGMA page_size=512")
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()


if __name__ == "__main__":
    for f in [seeds_safetensors, seeds_npz, seeds_sae_config, seeds_spm, seeds_tokenizers, seeds_model_config,
              seeds_graph_json, seeds_session, seeds_index_corpus, seeds_feature_store]:
        f()
