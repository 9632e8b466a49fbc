"""Exports a joint-embedding model.pt (train_joint.py) to the transformers.js LLaVA layout.

usage: export_joint.py --checkpoint model.pt --out DIR [--parity FILE]
       then: node onnx_parity.mjs DIR FILE   (onnxruntime vs PyTorch, written into FILE)

Re-export shapes-joint after training (run.sh does both steps):
    cd training && /usr/bin/python3 export_joint.py --checkpoint runs/shapes-joint/model.pt \\
        --out ../assets/models/shapes-joint --parity ../assets/models/shapes-joint/parity.json
    node onnx_parity.mjs ../assets/models/shapes-joint ../assets/models/shapes-joint/parity.json

The folder (what transformers.js 4.3.2 `AutoProcessor` + `LlavaForConditionalGeneration`
read, /work/shared/docs/vlm-layout-llava.md; every trap of its section 4.8 is handled here):
- config.json: model_type "llava", image_token_index (= the `<image>` id), eos/bos/pad,
  text_config (model_type "llama": transformers.js names the KV cache from its layer count),
  vision_config (informative: transformers.js does not read it), task_specific_params
  (Iris's prompt templates per task).
- generation_config.json: eos/bos/pad, max_new_tokens (transformers.js's default max_length
  of 20 counts the image tokens), suppress_tokens [<image>].
- preprocessor_config.json: processor_class LlavaProcessor (AutoProcessor needs it), a
  ViTImageProcessor resizing to image_size x image_size (bilinear), rescale, normalize.
- processor_config.json (required): image_token "<image>", patch_size = pixels per image
  token (16: 2x2 patches of 8 px), num_additional_image_tokens 0: the processor expands the
  first "<image>" of a prompt to (size/patch_size)^2 tokens.
- tokenizer.json / tokenizer_config.json: vocab.py's WordPiece word vocabulary plus the
  added special token "<image>" (id = vocab size - 1); no post-processor (no automatic BOS:
  the prompt spells `<s>` after the image).
- onnx/vision_encoder.onnx: pixel_values [batch_size, 3, S, S] -> image_features
  [batch_size, N, dim], ViT + 2x2 merge + projector inside.
- onnx/embed_tokens.onnx: input_ids [batch_size, sequence_length] -> inputs_embeds.
- onnx/decoder_model_merged.onnx: one with-past graph (accepts a zero-length past):
  inputs_embeds, attention_mask, position_ids, past_key_values.{i}.key|value
  [batch_size, kv_heads, past, head_dim] -> logits, present.{i}.key|value. No input_ids.
- onnx/decoder_with_attentions_model_merged.onnx: the same, also returning
  decoder_attentions.{i} [batch_size, heads, sequence_length, past + sequence_length]
  (softmax weights; the image tokens are key positions 0..N-1 of an unpadded row).
- parity.json: PyTorch reference cases on assets/samples (pixels, prompts, greedy ids,
  per-step logits) and, once onnx_parity.mjs ran, its onnxruntime comparison.
"""
from __future__ import annotations

import argparse
import base64
import json
import os

import numpy as np
import onnx
import torch
from PIL import Image

import data
import vocab
from export import _pin
from model_joint import IMAGE_TOKEN, TOKENS, JointConfig, JointVLM, load

OPSET = 17
SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "assets", "samples")
MAX_NEW_TOKENS = 24


class VisionExport(torch.nn.Module):
    def __init__(self, model: JointVLM):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model.image_features(pixel_values)


class EmbedExport(torch.nn.Module):
    def __init__(self, model: JointVLM):
        super().__init__()
        self.embed = model.decoder.embed

    def forward(self, input_ids):
        return self.embed(input_ids)


class DecoderExport(torch.nn.Module):
    def __init__(self, model: JointVLM, attentions: bool):
        super().__init__()
        self.dec, self.attentions = model.decoder, attentions

    def forward(self, inputs_embeds, attention_mask, position_ids, *kv):
        past = [(kv[2 * i], kv[2 * i + 1]) for i in range(len(self.dec.blocks))]
        logits, presents, attns = self.dec.step(inputs_embeds, attention_mask, position_ids, past)
        out = [logits] + [t for p in presents for t in p]
        return tuple(out + attns) if self.attentions else tuple(out)


def _export(module, args, path, inputs, outputs, axes) -> onnx.ModelProto:
    torch.onnx.export(module, args, path, input_names=inputs, output_names=outputs, dynamic_axes=axes,
                      opset_version=OPSET, do_constant_folding=True)
    return onnx.load(path)


def _save(m: onnx.ModelProto, path: str) -> None:
    onnx.checker.check_model(m)
    onnx.save(m, path)


def export_vision(model: JointVLM, path: str) -> None:
    cfg = model.cfg
    s = cfg.image_size
    m = _export(VisionExport(model), (torch.randn(2, 3, s, s),), path, ["pixel_values"], ["image_features"],
                {"pixel_values": {0: "batch_size"}, "image_features": {0: "batch_size"}})
    _pin(m.graph, ["pixel_values"], ["batch_size", 3, s, s])
    _pin(m.graph, ["image_features"], ["batch_size", cfg.num_image_tokens, cfg.dim])  # trap 2
    _save(m, path)


def export_embed(model: JointVLM, path: str) -> None:
    ids = torch.randint(0, model.cfg.vocab_size, (2, 3))
    axes = {"input_ids": {0: "batch_size", 1: "sequence_length"}, "inputs_embeds": {0: "batch_size", 1: "sequence_length"}}
    m = _export(EmbedExport(model), (ids,), path, ["input_ids"], ["inputs_embeds"], axes)
    _pin(m.graph, ["inputs_embeds"], ["batch_size", "sequence_length", model.cfg.dim])
    _save(m, path)


def export_decoder(model: JointVLM, path: str, attentions: bool) -> None:
    """Traced at batch 2, sequence 3, past 4 with a padded row, so no axis gets frozen."""
    cfg = model.cfg
    L, H, KV, hd = cfg.layers, cfg.heads, cfg.kv_heads, cfg.head_dim
    b, seq, past = 2, 3, 4
    x = torch.randn(b, seq, cfg.dim)
    mask = torch.ones(b, past + seq, dtype=torch.long)
    mask[0, :2] = 0
    pos = (mask.cumsum(1) - 1).masked_fill(mask == 0, 1)[:, -seq:]
    pkv = [torch.randn(b, KV, past, hd) for _ in range(2 * L)]
    total = "past_sequence_length + sequence_length"
    past_names = [f"past_key_values.{i}.{kv}" for i in range(L) for kv in ("key", "value")]
    present_names = [f"present.{i}.{kv}" for i in range(L) for kv in ("key", "value")]
    attn_names = [f"decoder_attentions.{i}" for i in range(L)] if attentions else []
    axes = {"inputs_embeds": {0: "batch_size", 1: "sequence_length"},
            "attention_mask": {0: "batch_size", 1: total},
            "position_ids": {0: "batch_size", 1: "sequence_length"},
            "logits": {0: "batch_size", 1: "sequence_length"}}
    axes.update({n: {0: "batch_size", 2: "past_sequence_length"} for n in past_names})
    axes.update({n: {0: "batch_size", 2: total} for n in present_names})
    axes.update({n: {0: "batch_size", 2: "sequence_length", 3: total} for n in attn_names})
    m = _export(DecoderExport(model, attentions), (x, mask, pos, *pkv), path,
                ["inputs_embeds", "attention_mask", "position_ids"] + past_names,
                ["logits"] + present_names + attn_names, axes)
    # static heads/head_dim and a batch axis named batch_size: transformers.js builds the
    # empty first-step past from these declared shapes (trap 18)
    _pin(m.graph, ["inputs_embeds"], ["batch_size", "sequence_length", cfg.dim])
    _pin(m.graph, past_names, ["batch_size", KV, "past_sequence_length", hd])
    _pin(m.graph, present_names, ["batch_size", KV, total, hd])
    _pin(m.graph, ["logits"], ["batch_size", "sequence_length", cfg.vocab_size])
    _pin(m.graph, attn_names, ["batch_size", H, "sequence_length", total])  # trap 2
    names = [i.name for i in m.graph.input]
    assert "input_ids" not in names, names  # trap 7
    _save(m, path)


def tokenizer_json() -> dict:
    tok = vocab.tokenizer_json()
    image_id = len(vocab.TOKENS)
    assert TOKENS[image_id] == IMAGE_TOKEN
    tok["added_tokens"].append({"id": image_id, "content": IMAGE_TOKEN, "single_word": False, "lstrip": False,
                                "rstrip": False, "normalized": False, "special": True})
    tok["model"]["vocab"][IMAGE_TOKEN] = image_id
    return tok


PROMPTS = {  # task -> prompt text after the image placeholder (Iris's templates)
    "caption": f"{vocab.BOS}",
    "answer": f"{vocab.BOS}{vocab.QUESTION} {{question}} {vocab.ANSWER}",
    "generate": f"{vocab.BOS} {{prompt}}",
}


def write_configs(cfg: JointConfig, out: str) -> None:
    ids = {"bos_token_id": vocab.BOS_ID, "eos_token_id": vocab.EOS_ID, "pad_token_id": vocab.PAD_ID}
    text = {"model_type": "llama", "num_hidden_layers": cfg.layers, "num_attention_heads": cfg.heads,
            "num_key_value_heads": cfg.kv_heads, "hidden_size": cfg.dim, "head_dim": cfg.head_dim,
            "intermediate_size": cfg.ffn_dim, "hidden_act": "silu", "vocab_size": cfg.vocab_size,
            "max_position_embeddings": cfg.max_positions, "rms_norm_eps": cfg.rms_eps, "rope_theta": cfg.rope_theta,
            "tie_word_embeddings": True, "attention_bias": False, **ids}
    vision = {"model_type": "vit", "image_size": cfg.image_size, "patch_size": 8, "num_channels": 3,
              "hidden_size": cfg.enc_dim, "num_hidden_layers": cfg.enc_layers, "num_attention_heads": cfg.enc_heads,
              "intermediate_size": cfg.enc_dim * 4,
              "conv_stem_channels": [cfg.stem_channels, 2 * cfg.stem_channels, 2 * cfg.stem_channels],
              "token_pool": cfg.pool}
    config = {
        "architectures": ["LlavaForConditionalGeneration"],
        "model_type": "llava",
        "image_token_index": cfg.image_token_id,
        "image_seq_length": cfg.num_image_tokens,
        **ids,
        "vision_feature_select_strategy": "full",
        "vision_feature_layer": -1,
        "projector_hidden_act": "gelu",
        "tie_word_embeddings": True,
        "text_config": text,
        "vision_config": vision,
        # How each task is asked: the whole prompt; "<image>" expands to image_seq_length tokens.
        "task_specific_params": {task: {"template": f"{IMAGE_TOKEN}{t}"} for task, t in PROMPTS.items()},
    }
    gen = {**ids, "max_new_tokens": MAX_NEW_TOKENS, "do_sample": False, "num_beams": 1,
           "suppress_tokens": [cfg.image_token_id]}
    pre = {"processor_class": "LlavaProcessor", "image_processor_type": "ViTImageProcessor",
           "do_convert_rgb": True, "do_resize": True, "size": {"height": cfg.image_size, "width": cfg.image_size},
           "resample": 2, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
           "image_mean": [data.MEAN] * 3, "image_std": [data.STD] * 3}
    proc = {"processor_class": "LlavaProcessor", "image_token": IMAGE_TOKEN, "patch_size": cfg.token_patch_size,
            "num_additional_image_tokens": 0, "vision_feature_select_strategy": "full"}
    tok_cfg = vocab.tokenizer_config_json(cfg.max_positions)
    tok_cfg["additional_special_tokens"] = list(tok_cfg.get("additional_special_tokens", [])) + [IMAGE_TOKEN]
    for name, obj in (("config.json", config), ("generation_config.json", gen), ("preprocessor_config.json", pre),
                      ("processor_config.json", proc), ("tokenizer.json", tokenizer_json()),
                      ("tokenizer_config.json", tok_cfg)):
        with open(f"{out}/{name}", "w") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")


def service_pixels(path: str, size: int) -> np.ndarray:
    """The size x size HWC uint8 pixels transformers.js (and Iris, bit-exact with it) feed the
    model for an RGB image k times the input size: sharp's affine bilinear resize at scale 1/k
    samples pixel (k*y, k*x), no averaging and no half-pixel shift (test/parity/
    transformers-js-llava.test.ts checks it bit for bit). data.to_input_size averages instead,
    so it is not used for these references."""
    arr = np.asarray(Image.open(path).convert("RGB"))
    k = arr.shape[0] // size
    assert arr.shape[0] == arr.shape[1] == k * size, f"{path}: {arr.shape} is not a multiple of {size}"
    return np.ascontiguousarray(arr[::k, ::k])


def parity_cases(model: JointVLM) -> dict:
    """PyTorch references on the sample images (assets/samples), batch 1: the pixels the
    model saw (the 128 px PNG resized to the input size as Iris/transformers.js do it), the
    prompt text for transformers.js's processor, the full input_ids, the greedy ids (the EOS
    included when it stopped) and the logits of every greedy step."""
    cfg = model.cfg
    with open(os.path.join(SAMPLES, "labels.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    cases = []
    for i, row in enumerate(rows):
        arr = service_pixels(os.path.join(SAMPLES, row["image"]), cfg.image_size)
        task = ("caption", "answer", "generate")[i % 3]
        if task == "caption":
            prompt_ids, text = vocab.caption_prompt(), PROMPTS["caption"]
        elif task == "answer":
            q = row["questions"][0]["question"]
            prompt_ids, text = vocab.question_prompt(q), PROMPTS["answer"].format(question=q)
        else:
            p = row["continuation"]["prefix"]
            prompt_ids, text = vocab.continuation_prompt(p), PROMPTS["generate"].format(prompt=p)
        px = data.preprocess(arr[None])
        out, step_logits = model.greedy(px, [prompt_ids], vocab.EOS_ID, max_new=MAX_NEW_TOKENS, return_logits=True)
        ids = out[0] + ([vocab.EOS_ID] if len(step_logits[0]) > len(out[0]) else [])  # it stopped at EOS
        cases.append({
            "image_file": row["image"], "task": task, "image_uint8_hwc": base64.b64encode(arr.tobytes()).decode(),
            "prompt_text": f"{IMAGE_TOKEN}{text}", "prompt_ids": prompt_ids, "input_ids": model.full_prompt(prompt_ids),
            "greedy_ids": ids, "first_logits": [round(float(v), 6) for v in step_logits[0][0]],
            "step_logits": [[round(float(v), 6) for v in s] for s in step_logits[0]],
        })
    return {"image_size": cfg.image_size, "num_image_tokens": cfg.num_image_tokens,
            "image_token_id": cfg.image_token_id, "eos_token_id": vocab.EOS_ID, "max_new_tokens": MAX_NEW_TOKENS,
            "suppress_tokens": [cfg.image_token_id], "cases": cases}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--parity", help="write PyTorch reference outputs (for onnx_parity.mjs and the Node tests) here")
    args = ap.parse_args()
    torch.manual_seed(0)  # the trace inputs: the files do not depend on them, but keep runs identical
    model = load(args.checkpoint)
    os.makedirs(f"{args.out}/onnx", exist_ok=True)
    export_vision(model, f"{args.out}/onnx/vision_encoder.onnx")
    export_embed(model, f"{args.out}/onnx/embed_tokens.onnx")
    export_decoder(model, f"{args.out}/onnx/decoder_model_merged.onnx", attentions=False)
    export_decoder(model, f"{args.out}/onnx/decoder_with_attentions_model_merged.onnx", attentions=True)
    write_configs(model.cfg, args.out)
    if args.parity:
        with open(args.parity, "w") as f:
            json.dump(parity_cases(model), f)
    sizes = {n: os.path.getsize(f"{args.out}/onnx/{n}") for n in sorted(os.listdir(f"{args.out}/onnx"))}
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"exported": args.out, "parameters": params, "bytes": sizes}))


if __name__ == "__main__":
    main()
