"""Writes the model card README.md of an exported folder from its training run."""
from __future__ import annotations

import argparse
import json
import os

KIND_NAMES = {
    "color_of_shape": "what color is the {shape}?",
    "shape_of_color": "what shape is the {color} object?",
    "count": "how many shapes are there?",
    "count_color": "how many {color} shapes are there?",
    "exists": "is there a {color} {shape}?",
    "size_of_shape": "is the {shape} small or large?",
}
VARIANT_NAMES = {"png128": "128 px PNG", "jpeg64": "64 px JPEG q75", "jpeg256": "256 px JPEG q75"}


def quality_table(result: dict) -> str:
    variants = list(result)
    lines = ["| measure | " + " | ".join(VARIANT_NAMES.get(v, v) for v in variants) + " |",
             "| --- |" + " --- |" * len(variants)]
    def row(name, get):
        lines.append(f"| {name} | " + " | ".join(f"{get(result[v]):.2f} %" for v in variants) + " |")
    row("caption exact match", lambda r: r["caption"])
    row("answer exact match (all kinds)", lambda r: r["answer"])
    for kind, q in KIND_NAMES.items():
        row(f"&nbsp;&nbsp;`{q}`", lambda r, k=kind: r["by_kind"].get(k, float("nan")))
    row("caption continuation exact match", lambda r: r["continuation"])
    first = result[variants[0]]
    lines.append("")
    lines.append(f"{first['scenes']} held-out scenes, {first['questions']} questions per variant, greedy decoding.")
    return "\n".join(lines)


KIND_LABELS = {
    "photo": "real photographs (crops and composites)", "text": "text", "noise": "noise", "gradient": "gradients",
    "empty": "empty canvases", "many_objects": "more than 3 objects", "overlapping": "overlapping objects",
    "other_shapes": "other shapes (stars, hexagons, ellipses, ...)", "background": "a background outside the three colors",
}


def refusal_summary(ood: dict) -> str:
    if not ood:
        return ("Any other image gets a shapes-world caption anyway,\n  and other questions get a shapes-world "
                "answer or `<unk>`-driven nonsense.")
    r = next(iter(ood.values()))
    return (f"Other images are captioned `an image i cannot describe`\n  ({r['caption']:.1f} % of held-out "
            f"out-of-domain images) and other questions are answered `unknown`\n  ({r['scenes_out_of_grammar']:.1f} %); "
            "see \"What it refuses\" below.")


def refusal_section(ood: dict) -> str:
    """What the model refuses and how well, from evaluate.py's out-of-domain table."""
    if not ood:
        return ""
    variants = list(ood)
    first = ood[variants[0]]
    head = "| | " + " | ".join(VARIANT_NAMES.get(v, v) for v in variants) + " |"
    lines = [head, "| --- |" + " --- |" * len(variants)]

    def row(name, get):
        lines.append(f"| {name} | " + " | ".join(f"{get(ood[v]):.2f} %" for v in variants) + " |")

    row("OOD images captioned `an image i cannot describe`", lambda r: r["caption"])
    row("six-form questions about them answered `unknown`", lambda r: r["answer"])
    row("out-of-grammar questions about them answered `unknown`", lambda r: r["out_of_grammar"])
    row("their continuations that end at once", lambda r: r["continuation"])
    row("out-of-grammar questions about scenes answered `unknown`", lambda r: r["scenes_out_of_grammar"])
    row("scenes wrongly captioned `an image i cannot describe`", lambda r: r["scenes_refused"])
    kinds = ["| kind of OOD image (128 px PNG) | images | caption | `unknown` answers | out-of-grammar `unknown` | continuation ends |",
             "| --- | --- | --- | --- | --- | --- |"]
    for k, t in first["by_kind"].items():
        kinds.append(f"| {KIND_LABELS.get(k, k)} | {t['images']} | {t['caption']:.2f} % | {t['answer']:.2f} % | "
                     f"{t.get('out_of_grammar', float('nan')):.2f} % | {t['continuation']:.2f} % |")
    fams = ", ".join(f"{f} {v:.1f} %" for f, v in first["scenes_out_of_grammar_by_family"].items())
    met = [VARIANT_NAMES.get(v, v) for v in variants if ood[v]["meets_spec"]]
    verdict = ("meets the spec's out-of-domain bars on every variant" if len(met) == len(variants)
               else "does NOT meet the spec's out-of-domain bars" + (f" (met on {', '.join(met)} only)" if met else ""))
    return f"""
## What it refuses, and how well
An image that is not a shapes-world scene (a photograph, text, noise, a gradient, an empty
canvas, more than 3 objects, overlapping objects, another shape, a background outside white,
gray and black) is captioned `an image i cannot describe`, every question about it is answered
`unknown`, and a caption continuation on it stops at once. A question that is none of the six
forms (other words, other shapes or colors, another word order, another language) is
answered `unknown` on any image. Measured by `training/evaluate.py` on {first['images']} held-out
out-of-domain images ({first['photos']} of them real photographs whose source images the
training never saw) and {first['scenes_out_of_grammar_questions']} out-of-grammar questions about
{first['scenes']} held-out scenes:

{chr(10).join(lines)}

{chr(10).join(kinds)}

Out-of-grammar questions about scenes by family (128 px PNG): {fams}.
The model {verdict} (≥ 95 % exact OOD captions, ≥ 95 % `unknown` answers about OOD images
and to out-of-grammar questions about scenes, on ≥ 500 OOD images of which ≥ 100
photographs). The empty prefix is the caption prompt itself, so
a continuation from nothing on an OOD image reads `an image i cannot describe`.
"""


def attention_section(model: str, grid: int) -> str:
    """Attention maps, from the pointing game Iris ran on the exported folder (attention.json,
    written by `iris eval DIR --attention --update-model`); nothing when it has not run."""
    path = f"{model}/attention.json"
    if not os.path.exists(path):
        return ""
    a = json.load(open(path))
    rates, name = a["rates"], a["aggregation"]
    def pct(m: str) -> str:
        r = rates[m]
        return f"{r['color']:.1f} % of color words, {r['shape']:.1f} % of shape words and {r['size']:.1f} % of size words"
    layers = sorted(k for k in rates if k.startswith("layer "))
    per_layer = "; ".join(f"{k} alone: {rates[k]['color']:.1f} / {rates[k]['shape']:.1f} / {rates[k]['size']:.1f} %" for k in layers)
    return f"""
## Attention maps: what they mean and what they don't
The attentions variant of the decoder gives, per generated token, the decoder's attention
over the {grid} × {grid} patch grid; Iris combines the layers with `{name}` (named in this
folder's `attention.json`, chosen by the pointing game: `iris eval DIR --attention
--update-model` keeps the aggregation whose worst word kind scores best). On
{a['scenes']} correct two- and three-object captions of held-out scenes ({a['variant']}), the map's
highest patch lies on the described object for {pct(name)} (color / shape / size: {per_layer}).
These are attention weights, not attributions: they show where the decoder's queries
went, not what caused the word; the maps of function words ("a", "above", "and") carry
little meaning; and a different training run spreads the roles over the layers
differently, which is why the choice is measured again for every export.
"""


def draft_section(run: str, model: str) -> str:
    """The draft decoder for speculative decoding, when the run trained one."""
    path = f"{run}/draft/history.json"
    if not os.path.exists(path):
        return ""
    h = json.load(open(path))
    cfg = json.load(open(f"{model}/draft/config.json"))["decoder"]
    size = os.path.getsize(f"{model}/draft/onnx/decoder_model_merged.onnx")
    alone = h["draft_alone"]
    return f"""
## Draft model for speculative decoding
`draft/onnx/decoder_model_merged.onnx` ({size / 1e6:.2f} MB) is a {cfg['decoder_layers']}-layer decoder of
the same width, in the same cache naming, that reads this model's encoder output (it was
trained on a frozen copy of this encoder, so no second encoder runs). `training/train_draft.py`
distills it from this model in {h['steps']} steps ({h['seconds'] / 60:.1f} min): KL divergence from this
model's next-token distribution plus cross-entropy on the true token. On 500 validation
scenes its greedy next token equals this model's at {100 * h['agreement_with_main']:.1f} % of the
positions of this model's own captions and answers; alone, it captions {100 * alone['caption']:.1f} %
and answers {100 * alone['answer']:.1f} % exactly. It only proposes tokens: the main model verifies
every one, so what Iris outputs does not depend on it. Its decode-only graph,
`draft/onnx/decoder_with_past_model.onnx`, runs its steps after the first, as for this model.
"""


def medusa_section(model: str) -> str:
    """The Medusa heads (training/medusa.py), when the folder has them."""
    path = f"{model}/medusa/history.json"
    if not os.path.exists(path):
        return ""
    h = json.load(open(path))
    v = h["validation"]
    size = os.path.getsize(f"{model}/medusa/onnx/decoder_model_merged.onnx")
    accs = ", ".join(f"{100 * a:.1f}" for a in v["head_top1"])
    return f"""
## Medusa heads for speculative decoding
`medusa/onnx/decoder_model_merged.onnx` ({size / 1e6:.2f} MB, and its decode-only graph) is this
model's decoder with {h['heads']} heads as one more output, `medusa_logits`: head k reads the final
hidden state and guesses the token k+1 after the next, as `lm_head(h + SiLU(W_k h + b_k))` with the
tied LM head. `training/medusa.py` trains only the heads, on this model rebuilt from its ONNX files
(`training/from_onnx.py`), frozen: {h['positions']:,} positions of {h['train_size']:,} training scenes,
{h['epochs']} epochs ({h['seconds'] / 60:.0f} min). On {h.get('val_size', 500)} validation scenes, along this model's own
greedy captions and answers, the heads' top-1 guesses of the tokens 2 to {h['heads'] + 1} ahead are right
{accs} % of the time; a greedy chain keeps {v['tokens_per_step']:.2f} tokens per verify step. Like the draft,
they only propose: what Iris outputs does not depend on them.
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--minutes", type=int, default=0)
    ap.add_argument("--joint", action="store_true", help="the card of shapes-joint (train_joint.py, the LLaVA layout)")
    args = ap.parse_args()
    if args.joint:
        return joint_main(args)
    cfg = json.load(open(f"{args.model}/config.json"))
    history = json.load(open(f"{args.run}/history.json"))
    pt = json.load(open(f"{args.run}/eval_pytorch.json"))
    ood_path = f"{args.run}/eval_ood_pytorch.json"
    ood = json.load(open(ood_path)) if os.path.exists(ood_path) else {}
    sizes = onnx_sizes(args.model)
    enc, dec = cfg["encoder"], cfg["decoder"]
    hist = history_table(history)
    ts_eval = iris_eval_block(args.model)
    card = f"""# shapes-base

Iris's default model: a small vision-language model trained from scratch on the synthetic
shapes world (its generator is [`training/shapes.py`](../../../training/shapes.py): scenes of 1 to 3 circles, squares and
triangles in six colors and two sizes on a white, gray or black background). It captions a
scene, answers questions about it with one word, and completes a caption from any
whole-word prefix.

## What it can and cannot do
- It knows only the shapes world: its vocabulary is {dec['vocab_size']} tokens (the words of
  captions, questions and answers). {refusal_summary(ood)}
- It reads images at {enc['image_size']}×{enc['image_size']} px: scenes from 32 to 256 px work
  (it was trained on 32–256 px canvases, PNG, JPEG and WebP); very small objects in a
  32 px scene are hard to tell apart.
- A 64 px JPEG (4:2:0 chroma subsampling, the default of libjpeg and sharp) keeps color at
  32×32: a small object whose brightness is close to the background's (green, orange or
  purple on gray) loses part of its shape. Its captions are about 1.5 points less exact
  than the 128 px PNG's; the same 64 px scenes as PNG, or as JPEG without chroma
  subsampling, caption as well as the 128 px PNG.
- Questions must follow the spec's six forms, one-word answers{"; any other question is answered `unknown`" if ood else ""}.

## Prompts (the decoder input after the start token `<s>`)
| task | decoder input | output |
| --- | --- | --- |
| caption | *(nothing)* | `a large blue square to the left of a small red circle` |
| answer | `<question> what color is the circle? <answer>` | `red` |
| continue a caption | the prefix, e.g. `a large blue square to the left` | ` of a small red circle` |

`config.json` carries these as `task_specific_params` templates. A stock
`image-to-text` pipeline (transformers.js) captions with the model as it is.

## Architecture and size
- Vision encoder: a ViT with a convolutional stem ({enc['conv_stem_channels']} channels,
  stride 8 in all: an {enc['image_size'] // 8}×{enc['image_size'] // 8} grid of patch embeddings),
  {enc['num_hidden_layers']} transformer layers of width {enc['hidden_size']} with
  {enc['num_attention_heads']} heads, then a linear projection into the decoder's
  embedding space (width {dec['d_model']}).
- Decoder: {dec['decoder_layers']} pre-LN transformer layers of width {dec['d_model']},
  {dec['decoder_attention_heads']} heads, causal self-attention and cross-attention over the
  {(enc['image_size'] // 8) ** 2} patch embeddings, learned positions (max {dec['max_position_embeddings']}),
  LM head tied to the token embedding.
- ONNX files: {", ".join(f"`{n}` {s / 1e6:.2f} MB" for n, s in sizes.items())}.
  `decoder_model_merged.onnx` uses the encoder-decoder cache naming (`past_key_values.{{i}}.decoder.*`,
  `past_key_values.{{i}}.encoder.*`, `use_cache_branch`): cross-attention keys/values are
  computed once on the first step and passed back afterwards. It declares
  `attention_mask` and `position_ids` for left-padded batches.
  `decoder_with_attentions_model_merged.onnx` is the same graph that also outputs
  `cross_attentions.{{i}}` (`[batch, heads, new tokens, patches]`) for attention maps.
  `decoder_with_past_model.onnx` (optimum's name for the with-past decoder) is the merged
  graph's cached branch alone, made from it by graph surgery in `training/export.py`: no
  `If`, no `encoder_hidden_states` or `use_cache_branch` input, no `present.{{i}}.encoder.*`
  pass-through outputs, the patch axis and the reshapes' target shapes constant. Same
  weights, bit-identical logits; Iris runs it for every step after the first (a step about
  1.2× cheaper at 1 row, 1.4× at 8 and 1.8× at 32),
  transformers.js keeps loading the merged file. `iris quantize` makes its q8/fp16 variants.

## Training
`npm run train` (`training/run.sh`) reproduces this folder from fixed seeds: it renders
{history[0]['step'] * 64:,} augmented scenes, shown {len(history)} times each ({history[-1]['step'] * 64:,} presentations; canvas 32–256 px,
PNG/JPEG/WebP at quality 60–95, color jitter within ±20, antialiased edges, images
resized by other programs; plus out-of-domain images, 10 % as many as scenes, and an
out-of-grammar question in place of 10 % of the scenes' questions: see `training/ood.py`), trains with teacher forcing (cross-entropy of the next token
given the true prefix; per image its caption and 3 questions), plus a training-only
auxiliary loss that reads each object's shape, color and size off the patch holding its
centre (it gives the encoder a dense signal early; the heads are not exported), AdamW
with warmup and a cosine schedule, and validates greedy exact match every epoch. Matrix
products and convolutions run in bfloat16 (`--precision bf16`, about 3× faster on this
CPU than fp32); weights, optimizer state and losses stay fp32, and the export is fp32:

{chr(10).join(hist)}

Last run: {args.minutes} minutes end to end on a 2-core machine.
{draft_section(args.run, args.model)}{medusa_section(args.model)}{refusal_section(ood)}{attention_section(args.model, enc['image_size'] // 8)}
## Quality (held-out scenes rendered with a seed the training never saw)
Measured in PyTorch by `training/evaluate.py` (exact match, %):

{quality_table(pt)}

Measured through Iris's TypeScript pipeline (`iris eval`):

{ts_eval}
"""
    write_card(args.model, card, pt, ood)


def onnx_sizes(model: str) -> dict:
    onnx_dir = f"{model}/onnx"
    return {n: os.path.getsize(f"{onnx_dir}/{n}") for n in sorted(os.listdir(onnx_dir))}


def history_table(history: list) -> list:
    rows = ["| epoch | steps | train loss | val caption | val answer | minutes |", "| --- | --- | --- | --- | --- | --- |"]
    return rows + [f"| {h['epoch']} | {h['step']} | {h['loss']:.4f} | {100 * h['caption']:.1f} % | {100 * h['answer']:.1f} % | {h['seconds'] / 60:.1f} |" for h in history]


def iris_eval_block(model: str) -> str:
    """The card's `iris eval` tables (written by `iris eval --update-model`), kept across rewrites."""
    old = open(f"{model}/README.md").read() if os.path.exists(f"{model}/README.md") else ""
    if "<!-- eval:start -->" in old:
        return old[old.index("<!-- eval:start -->"): old.index("<!-- eval:end -->") + len("<!-- eval:end -->")]
    return "<!-- eval:start -->\n(not measured yet: run `npx iris eval <folder>`)\n<!-- eval:end -->"


def write_card(model: str, card: str, pt: dict, ood: dict) -> None:
    with open(f"{model}/README.md", "w") as f:
        f.write(card)
    with open(f"{model}/eval_pytorch.json", "w") as f:
        json.dump(pt, f, indent=2)
    if ood:
        with open(f"{model}/eval_ood_pytorch.json", "w") as f:
            json.dump(ood, f, indent=2)


def joint_main(args: argparse.Namespace) -> None:
    """shapes-joint's card: the same world, tasks and measurements as shapes-base's, the
    other way of joining image and text."""
    cfg = json.load(open(f"{args.model}/config.json"))
    history = json.load(open(f"{args.run}/history.json"))
    pt = json.load(open(f"{args.run}/eval_pytorch.json"))
    ood_path = f"{args.run}/eval_ood_pytorch.json"
    ood = json.load(open(ood_path)) if os.path.exists(ood_path) else {}
    vis, txt = cfg["vision_config"], cfg["text_config"]
    grid = vis["image_size"] // vis["patch_size"]
    token_grid = grid // vis.get("token_pool", 1)
    sizes = onnx_sizes(args.model)
    card = f"""# shapes-joint

The second of Iris's shipped models: the same shapes world, tasks and vocabulary as
[shapes-base](../shapes-base/README.md), joined the other way. shapes-base is a vision
encoder-decoder (the decoder cross-attends to the patch embeddings); shapes-joint is a
joint-embedding model in the LLaVA layout that transformers.js runs: the projected image
features are {cfg['image_seq_length']} tokens placed at the start of the decoder's own sequence, and
the decoder attends to them with the same self-attention it uses for text.

## What it can and cannot do
- It knows only the shapes world: {txt['vocab_size']} tokens (the words of captions, questions and
  answers, and `<image>`). {refusal_summary(ood)}
- It reads images at {vis['image_size']}×{vis['image_size']} px (scenes from 32 to 256 px, PNG, JPEG, WebP).
- Questions must follow the spec's six forms, one-word answers{"; any other question is answered `unknown`" if ood else ""}.

## Prompts
`config.json`'s `task_specific_params` (Iris reads them; the image goes first):

| task | template | output |
| --- | --- | --- |
| caption | `{cfg['task_specific_params']['caption']['template']}` | `a large blue square to the left of a small red circle` |
| answer | `{cfg['task_specific_params']['answer']['template']}` | `red` |
| continue a caption | `{cfg['task_specific_params']['generate']['template']}` | the rest of the caption |

The processor expands `<image>` into {cfg['image_seq_length']} image tokens.

## Architecture and size
- Vision encoder: a ViT with a convolutional stem (stride {vis['patch_size']}: a {grid}×{grid} grid of
  patches), {vis['num_hidden_layers']} transformer layers of width {vis['hidden_size']}; neighbouring 2×2 patches are
  merged into one token ({token_grid}×{token_grid} = {cfg['image_seq_length']} image tokens) and projected into the
  decoder's embedding space (`onnx/vision_encoder.onnx`).
- Decoder: a Llama-style decoder ({txt['num_hidden_layers']} layers of width {txt['hidden_size']},
  {txt['num_attention_heads']} heads, {txt['num_key_value_heads']} key/value heads, RoPE, RMSNorm, SwiGLU), LM head tied to
  the token embedding (`onnx/embed_tokens.onnx` gives the text tokens' embeddings).
- ONNX files: {", ".join(f"`{n}` {s / 1e6:.2f} MB" for n, s in sizes.items())}.

## Training
`npm run train` (`training/run.sh`, `IRIS_MODELS=joint` for this model alone) reproduces
this folder from fixed seeds with `training/train_joint.py`: the same scenes, augmentation,
out-of-domain images and out-of-grammar questions, optimizer, schedule and auxiliary
per-patch loss as shapes-base. One row holds an image's tokens followed by its caption and
3 questions, each attending to the image tokens and causally to itself only, so the image
is encoded once per row:

{chr(10).join(history_table(history))}

Last run: {args.minutes} minutes end to end on a 2-core machine.
{refusal_section(ood)}{attention_section(args.model, token_grid)}
## Quality (held-out scenes rendered with a seed the training never saw)
Measured in PyTorch by `training/evaluate.py --joint` (exact match, %):

{quality_table(pt)}

Measured through Iris's TypeScript pipeline (`iris eval`):

{iris_eval_block(args.model)}
"""
    write_card(args.model, card, pt, ood)


if __name__ == "__main__":
    main()
