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


# Measured through Iris (`iris eval DIR --attention`), not by this script: re-measure after a retrain.
ATTENTION_SECTION = """
## Attention maps: what they mean and what they don't
`onnx/decoder_with_attentions_model_merged.onnx` gives, per generated token, the decoder's
cross-attention over the 8 × 8 patch grid; Iris combines the layers as the mean of the
first and the last (the default map, chosen by the pointing game: `iris eval DIR
--attention`). On 1,000 held-out scenes (png128), the default map's highest patch lies on
the described object for 99.8 % of color words, 95.3 % of shape words and 95.9 % of size
words of correct two- and three-object captions; the first layer alone looks at the
object whose shape is written (96.4 %), the last at the one whose color and size are
(99.6 %, 95.8 %). These are attention weights, not attributions: they show where the
decoder's queries went, not what caused the word; the maps of function words ("a",
"above", "and") carry little meaning; and a different training run may spread the roles
over the layers differently, which the pointing game measures again.
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--minutes", type=int, default=0)
    args = ap.parse_args()
    cfg = json.load(open(f"{args.model}/config.json"))
    history = json.load(open(f"{args.run}/history.json"))
    pt = json.load(open(f"{args.run}/eval_pytorch.json"))
    ood_path = f"{args.run}/eval_ood_pytorch.json"
    ood = json.load(open(ood_path)) if os.path.exists(ood_path) else {}
    onnx_dir = f"{args.model}/onnx"
    sizes = {n: os.path.getsize(f"{onnx_dir}/{n}") for n in sorted(os.listdir(onnx_dir))}
    enc, dec = cfg["encoder"], cfg["decoder"]
    hist = ["| epoch | steps | train loss | val caption | val answer | minutes |", "| --- | --- | --- | --- | --- | --- |"]
    hist += [f"| {h['epoch']} | {h['step']} | {h['loss']:.4f} | {100 * h['caption']:.1f} % | {100 * h['answer']:.1f} % | {h['seconds'] / 60:.1f} |" for h in history]
    old = open(f"{args.model}/README.md").read() if os.path.exists(f"{args.model}/README.md") else ""
    ts_eval = ""
    if "<!-- eval:start -->" in old:
        ts_eval = old[old.index("<!-- eval:start -->"): old.index("<!-- eval:end -->") + len("<!-- eval:end -->")]
    else:
        ts_eval = "<!-- eval:start -->\n(not measured yet: run `npx iris eval <folder>`)\n<!-- eval:end -->"
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
{draft_section(args.run, args.model)}{refusal_section(ood)}{ATTENTION_SECTION}
## Quality (held-out scenes rendered with a seed the training never saw)
Measured in PyTorch by `training/evaluate.py` (exact match, %):

{quality_table(pt)}

Measured through Iris's TypeScript pipeline (`iris eval`):

{ts_eval}
"""
    with open(f"{args.model}/README.md", "w") as f:
        f.write(card)
    with open(f"{args.model}/eval_pytorch.json", "w") as f:
        json.dump(pt, f, indent=2)
    if ood:
        with open(f"{args.model}/eval_ood_pytorch.json", "w") as f:
            json.dump(ood, f, indent=2)


if __name__ == "__main__":
    main()
