"""Exports a trained model.pt to a Hugging Face vision-encoder-decoder ONNX folder.

usage: export.py --checkpoint model.pt --out DIR [--naming encdec|gpt2] [--parity FILE] [--draft]
       export.py --checkpoint model.pt --out DIR --decode-graph-only   (add the decode-only graph to an exported folder)

encdec naming (the default, decoder model_type "trocr"): the decoder caches
cross-attention keys/values as `past_key_values.{i}.encoder.*`. They are computed once,
inside an `If(use_cache_branch)` node, on the first step and passed back after that.
gpt2 naming (the Xenova/vit-gpt2 layout): only self-attention is cached and cross
keys/values are recomputed from `encoder_hidden_states` every step.

With encdec naming the folder also gets `decoder_with_past_model.onnx`, the decode-only
graph (optimum's name for it): the merged file's `If` replaced by its cached branch, so
the cross keys/values are read straight from `past_key_values.{i}.encoder.*`, without the
`present.{i}.encoder.*` pass-through outputs, `encoder_hidden_states` or
`use_cache_branch`. Same weights and nodes, so the same logits; Iris runs it for every
step after the first (transformers.js keeps loading the merged file).
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import random
import tempfile

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

import data
import shapes
import vocab
from model import ModelConfig, VisionLanguageModel

OPSET = 17


class EncDecCore(torch.nn.Module):
    """Decoder step with cross keys/values as inputs (the If node feeds them later)."""

    def __init__(self, model: VisionLanguageModel, attentions: bool, heads: torch.nn.Module | None = None):
        super().__init__()
        self.dec, self.attentions, self.heads = model.decoder, attentions, heads

    def forward(self, input_ids, attention_mask, position_ids, *kv):
        n = len(self.dec.blocks)
        past = [(kv[2 * i], kv[2 * i + 1]) for i in range(n)]
        cross = [(kv[2 * n + 2 * i], kv[2 * n + 2 * i + 1]) for i in range(n)]
        hidden, presents, attns = self.dec.step_hidden(input_ids, attention_mask, position_ids, past, cross)
        out = [self.dec.lm_head(hidden)] + ([self.heads(hidden, self.dec.lm_head)] if self.heads is not None else [])
        out += [t for p in presents for t in p]
        return tuple(out + attns) if self.attentions else tuple(out)


class CrossKV(torch.nn.Module):
    def __init__(self, model: VisionLanguageModel):
        super().__init__()
        self.dec = model.decoder

    def forward(self, encoder_hidden_states):
        return tuple(t for kv in self.dec.cross_kv(encoder_hidden_states) for t in kv)


class Gpt2Decoder(torch.nn.Module):
    def __init__(self, model: VisionLanguageModel):
        super().__init__()
        self.dec = model.decoder

    def forward(self, input_ids, encoder_hidden_states, attention_mask, position_ids, *kv):
        past = [(kv[2 * i], kv[2 * i + 1]) for i in range(len(self.dec.blocks))]
        logits, presents, _ = self.dec.step(input_ids, attention_mask, position_ids, past, self.dec.cross_kv(encoder_hidden_states))
        return (logits,) + tuple(t for p in presents for t in p)


def load(path: str) -> VisionLanguageModel:
    ckpt = torch.load(path, map_location="cpu")
    model = VisionLanguageModel(ModelConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def _export(module, args, path, inputs, outputs, axes):
    torch.onnx.export(module, args, path, input_names=inputs, output_names=outputs, dynamic_axes=axes,
                      opset_version=OPSET, do_constant_folding=True)
    return onnx.load(path)


def export_encoder(model: VisionLanguageModel, path: str) -> None:
    s = model.cfg.image_size
    _export(model.encoder, (torch.randn(2, 3, s, s),), path, ["pixel_values"], ["last_hidden_state"],
            {"pixel_values": {0: "batch_size"}, "last_hidden_state": {0: "batch_size"}})


def _trace_inputs(cfg: ModelConfig, b=2, seq=3, past=4):
    hd = cfg.dec_dim // cfg.dec_heads
    ids = torch.randint(4, cfg.vocab_size, (b, seq))
    mask = torch.ones(b, past + seq, dtype=torch.long)
    mask[0, :2] = 0
    pos = (mask.cumsum(1) - 1).clamp(min=0)[:, -seq:]
    pkv = [torch.randn(b, cfg.dec_heads, past, hd) for _ in range(2 * cfg.dec_layers)]
    return ids, mask, pos, pkv


def _pin(graph, names, dims):
    """Gives the listed graph inputs/outputs the symbolic dims (torch may invent names)."""
    for vi in list(graph.input) + list(graph.output):
        if vi.name in names:
            for d, name in zip(vi.type.tensor_type.shape.dim, dims):
                if name is None:
                    continue
                if isinstance(name, str):
                    d.ClearField("dim_value")
                    d.dim_param = name
                else:
                    d.ClearField("dim_param")
                    d.dim_value = name


def export_encdec_decoder(model: VisionLanguageModel, path: str, attentions: bool, heads: torch.nn.Module | None = None) -> None:
    """The merged decoder; with `heads` (medusa.MedusaHeads) it has one more output,
    `medusa_logits` [batch, seq, K, vocab], after `logits`."""
    cfg = model.cfg
    L, H, hd = cfg.dec_layers, cfg.dec_heads, cfg.dec_dim // cfg.dec_heads
    ids, mask, pos, pkv = _trace_inputs(cfg)
    cross = [torch.randn(2, H, cfg.num_patches, hd) for _ in range(2 * L)]
    past_names = [f"past_key_values.{i}.decoder.{kv}" for i in range(L) for kv in ("key", "value")]
    cross_names = [f"cross.{i}.{kv}" for i in range(L) for kv in ("key", "value")]
    present_names = [f"present.{i}.decoder.{kv}" for i in range(L) for kv in ("key", "value")]
    attn_names = [f"cross_attentions.{i}" for i in range(L)] if attentions else []
    head_names = ["medusa_logits"] if heads is not None else []
    axes = {"input_ids": {0: "batch_size", 1: "decoder_sequence_length"},
            "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
            "position_ids": {0: "batch_size", 1: "decoder_sequence_length"},
            "logits": {0: "batch_size", 1: "decoder_sequence_length"},
            "medusa_logits": {0: "batch_size", 1: "decoder_sequence_length"}}
    axes.update({n: {0: "batch_size", 2: "past_decoder_sequence_length"} for n in past_names})
    axes.update({n: {0: "batch_size", 2: "encoder_sequence_length_out"} for n in cross_names})
    axes.update({n: {0: "batch_size", 2: "total_sequence_length"} for n in present_names})
    axes.update({n: {0: "batch_size", 2: "decoder_sequence_length", 3: "encoder_sequence_length_out"} for n in attn_names})
    with tempfile.TemporaryDirectory() as tmp:
        core = _export(EncDecCore(model, attentions, heads), (ids, mask, pos, *pkv, *cross), f"{tmp}/core.onnx",
                       ["input_ids", "attention_mask", "position_ids"] + past_names + cross_names,
                       ["logits"] + head_names + present_names + attn_names, {k: v for k, v in axes.items() if k != "medusa_logits" or heads is not None})
        enc = torch.randn(2, cfg.num_patches, cfg.dec_dim)
        ckv = _export(CrossKV(model), (enc,), f"{tmp}/cross.onnx", ["encoder_hidden_states"], cross_names,
                      {"encoder_hidden_states": {0: "batch_size", 1: "encoder_sequence_length"}})
    merged = merge_cross_cache(core, ckv, cfg)
    _pin(merged.graph, past_names + [n.replace("decoder", "encoder") for n in past_names],
         ["batch_size", H, None, hd])
    onnx.checker.check_model(merged)
    onnx.save(merged, path)


def merge_cross_cache(core: onnx.ModelProto, ckv: onnx.ModelProto, cfg: ModelConfig) -> onnx.ModelProto:
    """Replaces the core's `cross.*` inputs with an If node: with a cache, pass
    `past_key_values.{i}.encoder.*` through; without, compute them from the encoder states."""
    L, H, hd = cfg.dec_layers, cfg.dec_heads, cfg.dec_dim // cfg.dec_heads
    g = core.graph
    cross_names = [f"cross.{i}.{kv}" for i in range(L) for kv in ("key", "value")]
    pkv_enc = [f"past_key_values.{i}.encoder.{kv}" for i in range(L) for kv in ("key", "value")]
    present_enc = [f"present.{i}.encoder.{kv}" for i in range(L) for kv in ("key", "value")]

    def branch_outputs(prefix):
        return [helper.make_tensor_value_info(f"{prefix}/{n}", TensorProto.FLOAT, None) for n in cross_names]

    then_graph = helper.make_graph(
        [helper.make_node("Identity", [p], [f"then/{c}"]) for p, c in zip(pkv_enc, cross_names)],
        "use_cache", [], branch_outputs("then"))
    # the cross-KV graph, renamed into its own namespace; its weights go to the outer graph
    rename = {i.name: i.name for i in ckv.graph.input}
    for init in ckv.graph.initializer:
        rename[init.name] = f"crosskv/{init.name}"
        init.name = rename[init.name]
        g.initializer.append(init)
    for c in cross_names:
        rename[c] = f"else/{c}"
    else_nodes = []
    for node in ckv.graph.node:
        for io in (node.input, node.output):
            for k, name in enumerate(io):
                if name and name not in rename:
                    rename[name] = f"crosskv/{name}"
                io[k] = rename.get(name, name)
        node.name = f"crosskv/{node.name}"
        else_nodes.append(node)
    else_graph = helper.make_graph(else_nodes, "compute_cross", [], branch_outputs("else"))
    kept = [i for i in g.input if i.name not in cross_names]
    del g.input[:]
    g.input.extend(kept)
    g.input.insert(1, helper.make_tensor_value_info(
        "encoder_hidden_states", TensorProto.FLOAT, ["batch_size", "encoder_sequence_length", cfg.dec_dim]))
    g.input.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch_size", H, "encoder_sequence_length_out", hd])
                   for n in pkv_enc)
    g.input.append(helper.make_tensor_value_info("use_cache_branch", TensorProto.BOOL, [1]))
    g.node.insert(0, helper.make_node("If", ["use_cache_branch"], cross_names, name="cross_cache",
                                      then_branch=then_graph, else_branch=else_graph))
    for c, p in zip(cross_names, present_enc):
        g.node.append(helper.make_node("Identity", [c], [p]))
        g.output.append(helper.make_tensor_value_info(p, TensorProto.FLOAT, ["batch_size", H, "encoder_sequence_length_out", hd]))
    return core


DECODE_GRAPH = "decoder_with_past_model.onnx"


def decode_only_graph(merged: onnx.ModelProto, num_patches: int | None = None) -> onnx.ModelProto:
    """The merged decoder with `If(use_cache_branch)` replaced by its then (cached) branch
    inlined, the `present.*.encoder.*` pass-through outputs dropped, the reshapes' target
    shapes made constant (`static_reshapes`), and every node, input and initializer that
    then feeds nothing removed. `num_patches` pins the cross K/V inputs' patch axis."""
    m = onnx.ModelProto()
    m.CopyFrom(merged)
    g = m.graph
    ifs = [n for n in g.node if n.op_type == "If" and list(n.input) == ["use_cache_branch"]]
    if len(ifs) != 1:
        raise ValueError(f"expected one If(use_cache_branch) in the merged decoder, found {len(ifs)}")
    if_node = ifs[0]
    then_g = next(a.g for a in if_node.attribute if a.name == "then_branch")
    # inline the branch: its values get the If's output names, its initializers move up
    rename = {sub.name: out for sub, out in zip(then_g.output, if_node.output)}
    taken = {i.name for i in g.initializer} | {o for n in g.node for o in n.output} | {i.name for i in g.input}
    for init in then_g.initializer:
        if init.name in taken:
            rename[init.name] = f"then/{init.name}"
            init.name = rename[init.name]
        g.initializer.append(init)
    inlined = []
    for node in then_g.node:
        for io in (node.input, node.output):
            for k, name in enumerate(io):
                io[k] = rename.get(name, name)
        inlined.append(node)
    nodes = []
    for n in g.node:
        nodes.extend(inlined if n is if_node else [n])
    kept_outputs = [o for o in g.output if not (o.name.startswith("present.") and ".encoder." in o.name)]
    del g.output[:]
    g.output.extend(kept_outputs)
    del g.node[:]
    g.node.extend(nodes)
    static_reshapes(g)
    nodes = list(g.node)
    # dead-node elimination: keep the nodes whose outputs reach a graph output
    needed = {o.name for o in g.output}
    live = []
    for n in reversed(nodes):
        if any(o in needed for o in n.output):
            live.append(n)
            needed.update(i for i in n.input if i)
    live.reverse()
    del g.node[:]
    g.node.extend(live)
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    for field in (g.input, g.initializer):
        kept = [x for x in field if x.name in used]
        del field[:]
        field.extend(kept)
    kept_vi = [v for v in g.value_info if v.name in used]
    del g.value_info[:]
    g.value_info.extend(kept_vi)
    if num_patches is not None:
        for vi in g.input:
            if vi.name.startswith("past_key_values.") and ".encoder." in vi.name:
                d = vi.type.tensor_type.shape.dim[2]
                d.ClearField("dim_param")
                d.dim_value = num_patches
    g.name = f"{g.name}_with_past"
    onnx.checker.check_model(m)
    return m


def _const_ints(name, producers, initializers):
    if name in initializers:
        return numpy_helper.to_array(initializers[name]).reshape(-1).tolist()
    node = producers.get(name)
    if node is not None and node.op_type == "Constant":
        value = next((a.t for a in node.attribute if a.name == "value"), None)
        return None if value is None else numpy_helper.to_array(value).reshape(-1).tolist()
    return None


def static_reshapes(g) -> int:
    """Constant target shapes for the reshapes torch exports as `x.view(*x.shape[:2], h, d)`:
    Reshape(x, Concat(Unsqueeze(Gather(Shape(x), i)), ..., h, d)). A dimension gathered
    from the reshaped tensor at its own position (or through the Transpose that made it)
    becomes 0 (ONNX: copy that dimension), one other computed dimension -1 (what the size
    implies), constants stay. onnxruntime cannot fold these chains itself (the dims are
    symbolic); without them the decode step runs about 60 fewer nodes (shapes-base: 213 →
    153 after onnxruntime's optimizations) and costs 3-8 % less, same values."""
    producers = {o: n for n in g.node for o in n.output}
    initializers = {t.name: t for t in g.initializer}
    count = 0
    for n in g.node:
        if n.op_type != "Reshape" or any(a.name == "allowzero" and a.i for a in n.attribute):
            continue
        concat = producers.get(n.input[1])
        if concat is None or concat.op_type != "Concat":
            continue
        sources = {n.input[0]: None}  # tensor -> the perm that made the reshaped tensor from it
        made_by = producers.get(n.input[0])
        if made_by is not None and made_by.op_type == "Transpose":
            sources[made_by.input[0]] = next(list(a.ints) for a in made_by.attribute if a.name == "perm")
        target = []
        for pos, part in enumerate(concat.input):
            value = _const_ints(part, producers, initializers)
            if value is not None:
                if len(value) != 1 or value[0] == 0 or (value[0] == -1 and -1 in target):
                    target = None
                    break
                target.append(int(value[0]))
                continue
            unsq = producers.get(part)
            gather = producers.get(unsq.input[0]) if unsq is not None and unsq.op_type == "Unsqueeze" else None
            shape = producers.get(gather.input[0]) if gather is not None and gather.op_type == "Gather" else None
            index = _const_ints(gather.input[1], producers, initializers) if shape is not None and shape.op_type == "Shape" else None
            if index is not None and len(index) == 1 and not shape.attribute and shape.input[0] in sources \
                    and index[0] == (pos if sources[shape.input[0]] is None else sources[shape.input[0]][pos]):
                target.append(0)
            elif -1 not in target:
                target.append(-1)
            else:
                target = None
                break
        if target is None:
            continue
        name = f"{n.output[0]}/static_shape"
        g.initializer.append(numpy_helper.from_array(np.array(target, dtype=np.int64), name))
        initializers[name] = g.initializer[-1]
        n.input[1] = name
        count += 1
    return count


def write_decode_graph(merged_path: str, out_path: str, num_patches: int | None = None) -> None:
    onnx.save(decode_only_graph(onnx.load(merged_path), num_patches), out_path)


def export_gpt2_decoder(model: VisionLanguageModel, path: str) -> None:
    cfg = model.cfg
    L, H, hd = cfg.dec_layers, cfg.dec_heads, cfg.dec_dim // cfg.dec_heads
    ids, mask, pos, pkv = _trace_inputs(cfg)
    enc = torch.randn(2, cfg.num_patches, cfg.dec_dim)
    past_names = [f"past_key_values.{i}.{kv}" for i in range(L) for kv in ("key", "value")]
    present_names = [f"present.{i}.{kv}" for i in range(L) for kv in ("key", "value")]
    axes = {"input_ids": {0: "batch_size", 1: "sequence_length"},
            "encoder_hidden_states": {0: "batch_size", 1: "encoder_sequence_length"},
            "attention_mask": {0: "batch_size", 1: "past_sequence_length + sequence_length"},
            "position_ids": {0: "batch_size", 1: "sequence_length"},
            "logits": {0: "batch_size", 1: "sequence_length"}}
    axes.update({n: {0: "batch_size", 2: "past_sequence_length"} for n in past_names})
    axes.update({n: {0: "batch_size", 2: "past_sequence_length + sequence_length"} for n in present_names})
    m = _export(Gpt2Decoder(model), (ids, enc, mask, pos, *pkv), path,
                ["input_ids", "encoder_hidden_states", "attention_mask", "position_ids"] + past_names,
                ["logits"] + present_names, axes)
    _pin(m.graph, past_names, ["batch_size", H, None, hd])
    onnx.save(m, path)


def write_configs(cfg: ModelConfig, out: str, naming: str) -> None:
    ids = {"decoder_start_token_id": vocab.BOS_ID, "bos_token_id": vocab.BOS_ID,
           "eos_token_id": vocab.EOS_ID, "pad_token_id": vocab.PAD_ID}
    if naming == "gpt2":
        decoder = {"model_type": "gpt2", "n_layer": cfg.dec_layers, "n_head": cfg.dec_heads, "n_embd": cfg.dec_dim,
                   "n_positions": cfg.max_positions, "add_cross_attention": True}
    else:
        decoder = {"model_type": "trocr", "d_model": cfg.dec_dim, "decoder_layers": cfg.dec_layers,
                   "decoder_attention_heads": cfg.dec_heads, "decoder_ffn_dim": cfg.dec_dim * cfg.ffn_mult,
                   "max_position_embeddings": cfg.max_positions, "layernorm_embedding": False,
                   "tie_word_embeddings": True}
    decoder.update({"vocab_size": cfg.vocab_size, "is_decoder": True, "add_cross_attention": True, **ids})
    config = {
        "model_type": "vision-encoder-decoder",
        "architectures": ["VisionEncoderDecoderModel"],
        "is_encoder_decoder": True,
        "tie_word_embeddings": False,
        **ids,
        "encoder": {"model_type": "vit", "image_size": cfg.image_size, "patch_size": 8, "num_channels": 3,
                    "hidden_size": cfg.enc_dim, "num_hidden_layers": cfg.enc_layers,
                    "num_attention_heads": cfg.enc_heads, "intermediate_size": cfg.enc_dim * cfg.ffn_mult,
                    "projection_dim": cfg.dec_dim, "conv_stem_channels": [cfg.stem_channels, 2 * cfg.stem_channels, 2 * cfg.stem_channels]},
        "decoder": decoder,
        # How each task is asked: a template of text after the decoder start token.
        "task_specific_params": {
            "caption": {"template": ""},
            "answer": {"template": f"{vocab.QUESTION} {{question}} {vocab.ANSWER}"},
            "generate": {"template": "{prompt}"},
        },
    }
    gen = {**ids, "max_length": cfg.max_positions, "do_sample": False, "num_beams": 1}
    pre = {"image_processor_type": "ViTImageProcessor", "feature_extractor_type": "ViTFeatureExtractor",
           "do_resize": True, "size": {"height": cfg.image_size, "width": cfg.image_size}, "resample": 2,
           "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
           "image_mean": [data.MEAN] * 3, "image_std": [data.STD] * 3, "do_convert_rgb": True}
    for name, obj in (("config.json", config), ("generation_config.json", gen), ("preprocessor_config.json", pre)):
        with open(f"{out}/{name}", "w") as f:
            json.dump(obj, f, indent=2)
    vocab.write(out, cfg.max_positions)


@torch.no_grad()
def first_step_logits(model: VisionLanguageModel, px: torch.Tensor, prompt: list[int]) -> torch.Tensor:
    """The logits [vocab] at the prompt's last position, from one uncached decoder call."""
    cross = model.decoder.cross_kv(model.encoder(px))
    t = torch.tensor([prompt])
    return model.decoder.step(t, torch.ones_like(t), torch.arange(len(prompt))[None], None, cross)[0][0, -1]


def parity_cases(model: VisionLanguageModel, count: int = 8) -> dict:
    """Images (as the preprocessed uint8 input), prompts, PyTorch greedy ids and the
    first-step logits, for the Node parity test."""
    rng = random.Random(99)
    cases = []
    for i in range(count):
        scene = shapes.sample_scene(rng)
        arr = data.to_input_size(shapes.to_array(shapes.render(scene, 128)), model.cfg.image_size)
        _, q, _ = shapes.sample_question(rng, scene)
        prompt = vocab.caption_prompt() if i % 2 == 0 else vocab.question_prompt(q)
        px = data.preprocess(arr[None])
        ids = model.greedy(px, [prompt], vocab.EOS_ID, max_new=20)[0]
        if len(ids) < 20:  # it stopped at the end token: record it, so the finish reason is checked too
            ids = ids + [vocab.EOS_ID]
        logits = first_step_logits(model, px, prompt)
        cases.append({"image_uint8_hwc": base64.b64encode(arr.tobytes()).decode(), "prompt_ids": prompt,
                      "greedy_ids": ids, "first_logits": [round(float(x), 5) for x in logits]})
    return {"image_size": model.cfg.image_size, "eos_token_id": vocab.EOS_ID, "cases": cases}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--naming", default="encdec", choices=("encdec", "gpt2"))
    ap.add_argument("--parity", help="write PyTorch reference outputs for the Node parity test here")
    ap.add_argument("--draft", action="store_true",
                    help="a speculative-decoding draft: the decoder only (it reads the main model's encoder output)")
    ap.add_argument("--decode-graph-only", action="store_true",
                    help=f"only write onnx/{DECODE_GRAPH} from the folder's exported decoder_model_merged.onnx")
    args = ap.parse_args()
    model = load(args.checkpoint)
    merged = f"{args.out}/onnx/decoder_model_merged.onnx"
    if args.decode_graph_only:
        write_decode_graph(merged, f"{args.out}/onnx/{DECODE_GRAPH}", model.cfg.num_patches)
        print(json.dumps({"decode_graph": f"{args.out}/onnx/{DECODE_GRAPH}", "bytes": os.path.getsize(f"{args.out}/onnx/{DECODE_GRAPH}")}))
        return
    os.makedirs(f"{args.out}/onnx", exist_ok=True)
    if not args.draft:
        export_encoder(model, f"{args.out}/onnx/encoder_model.onnx")
    if args.naming == "gpt2":
        export_gpt2_decoder(model, f"{args.out}/onnx/decoder_model_merged.onnx")
    else:
        export_encdec_decoder(model, merged, attentions=False)
        write_decode_graph(merged, f"{args.out}/onnx/{DECODE_GRAPH}", model.cfg.num_patches)
        if not args.draft:
            export_encdec_decoder(model, f"{args.out}/onnx/decoder_with_attentions_model_merged.onnx", attentions=True)
    write_configs(model.cfg, args.out, args.naming)
    if args.parity:
        with open(args.parity, "w") as f:
            json.dump(parity_cases(model), f)
    sizes = {n: os.path.getsize(f"{args.out}/onnx/{n}") for n in sorted(os.listdir(f"{args.out}/onnx"))}
    print(json.dumps({"exported": args.out, "naming": args.naming, "bytes": sizes}))


if __name__ == "__main__":
    main()
