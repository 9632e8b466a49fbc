"""Teacher-forced training of the shapes-world model, with validation every epoch.

usage: train.py --out DIR [--preset base|tiny] [--train-size N] [--epochs N] ...
Writes DIR/model.pt (weights + config) and DIR/history.json.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import data
import ood
import shapes
import vocab
from model import ModelConfig, VisionLanguageModel

IGNORE = -100
PRESETS = {
    "base": dict(stem_channels=32, enc_dim=128, enc_layers=2, enc_heads=4, dec_dim=128, dec_layers=3, dec_heads=4),
    "tiny": dict(stem_channels=8, enc_dim=32, enc_layers=1, enc_heads=2, dec_dim=32, dec_layers=2, dec_heads=2),
}


def autocast(precision: str):
    """Mixed precision for training steps: matrix products and convolutions in bfloat16
    (about 3x faster on CPUs with AVX-512 BF16), weights, optimizer and losses in fp32."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


def make_config(preset: str) -> ModelConfig:
    return ModelConfig(vocab_size=len(vocab.TOKENS), **PRESETS[preset])


def _qa(question: str, answer: str):
    prompt = vocab.question_prompt(question)
    ans = vocab.encode(answer)
    return prompt + ans, [IGNORE] * (len(prompt) - 1) + ans + [vocab.EOS_ID]


def sequences(rng: random.Random, scene, num_questions: int, oog_rate: float = 0.0):
    """(input ids, target ids) pairs for one image. A scene: its caption and some questions,
    each out of grammar (answer `unknown`) with probability oog_rate. An out-of-domain
    image (ood.OODImage): the caption `an image i cannot describe`, questions of the six
    forms (about a random scene) or, a quarter of them, out of grammar, all answered
    `unknown`, and one continuation of a random caption prefix that ends at once."""
    cap = vocab.encode(scene.caption())
    out = [([vocab.BOS_ID] + cap, cap + [vocab.EOS_ID])]
    if isinstance(scene, ood.OODImage):
        for _ in range(num_questions):
            if rng.random() < 0.25:
                q = ood.out_of_grammar_question(rng)[1]
            else:
                q = shapes.sample_question(rng, shapes.sample_scene(rng))[1]
            out.append(_qa(q, ood.UNKNOWN))
        prompt = vocab.continuation_prompt(ood.random_prefix(rng))
        out.append((prompt, [IGNORE] * (len(prompt) - 1) + [vocab.EOS_ID]))
        return out
    for _ in range(num_questions):
        if oog_rate and rng.random() < oog_rate:
            out.append(_qa(ood.out_of_grammar_question(rng)[1], ood.UNKNOWN))
        else:
            _, q, a = shapes.sample_question(rng, scene)
            out.append(_qa(q, a))
    return out


def patch_targets(scenes, grid: int) -> torch.Tensor:
    """[n, 3, grid*grid] labels for the auxiliary loss: in the patch that holds an
    object's bounding-box centre, its shape, color and size (1-based); 0 elsewhere.
    Boxes are >= 4 px apart, so two centres never share a 16 px cell."""
    cell = shapes.REF / grid
    out = torch.zeros(len(scenes), 3, grid * grid, dtype=torch.long)
    for n, scene in enumerate(scenes):
        for o in scene.objects:
            k = int(o.cy // cell) * grid + int(o.cx // cell)
            out[n, 0, k] = AUX_SHAPES.index(o.shape) + 1
            out[n, 1, k] = AUX_COLORS.index(o.color) + 1
            out[n, 2, k] = AUX_SIZES.index(o.size) + 1
    return out


AUX_SHAPES, AUX_COLORS, AUX_SIZES = list(shapes.SHAPES), list(shapes.COLORS), list(shapes.SIZES)
AUX_CLASSES = (len(AUX_SHAPES) + 1, len(AUX_COLORS) + 1, len(AUX_SIZES) + 1)


class PatchHeads(torch.nn.Module):
    """Training-only heads that read each object's attributes off its patch feature. They
    give the encoder a dense signal early on; they are not exported."""

    def __init__(self, dim: int):
        super().__init__()
        self.heads = torch.nn.ModuleList(torch.nn.Linear(dim, k) for k in AUX_CLASSES)

    def loss(self, feats: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        total = feats.new_zeros(())
        for i, head in enumerate(self.heads):
            logits = head(feats).reshape(-1, AUX_CLASSES[i])
            t = targets[:, i].reshape(-1)
            per = F.cross_entropy(logits, t, reduction="none")
            total = total + per.mean() + per[t > 0].mean()
        return total


def text_batch(rng: random.Random, scenes, num_questions: int, oog_rate: float = 0.0):
    """Teacher-forcing rows for a batch of scenes (or OOD images): (ids, targets)
    [rows, width] and, per row, the index of its image in the batch."""
    rows, image_index = [], []
    for j, scene in enumerate(scenes):
        seqs = sequences(rng, scene, num_questions, oog_rate)
        rows += seqs
        image_index += [j] * len(seqs)
    ids, tgt = collate(rows)
    return ids, tgt, torch.tensor(image_index)


def collate(rows):
    width = max(len(i) for i, _ in rows)
    ids = torch.full((len(rows), width), vocab.PAD_ID, dtype=torch.long)
    tgt = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for r, (i, t) in enumerate(rows):
        ids[r, : len(i)] = torch.tensor(i)
        tgt[r, : len(t)] = torch.tensor(t)
    return ids, tgt


def evaluate(model: VisionLanguageModel, images: np.ndarray, scenes, seed: int = 0, batch: int = 250) -> dict:
    """Greedy exact match for captions and one question per scene."""
    model.eval()
    rng = random.Random(seed)
    cap_ok = ans_ok = 0
    per_kind: dict[str, list[int]] = {}
    for s in range(0, len(scenes), batch):
        px = data.preprocess(images[s : s + batch])
        sc = scenes[s : s + batch]
        caps = model.greedy(px, [vocab.caption_prompt() for _ in sc], vocab.EOS_ID)
        qs = [shapes.sample_question(rng, x) for x in sc]
        answers = model.greedy(px, [vocab.question_prompt(q) for _, q, _ in qs], vocab.EOS_ID, max_new=4)
        for scene, c, (kind, _, a), got in zip(sc, caps, qs, answers):
            cap_ok += vocab.decode(c) == scene.caption()
            hit = vocab.decode(got) == a
            ans_ok += hit
            per_kind.setdefault(kind, [0, 0])
            per_kind[kind][0] += hit
            per_kind[kind][1] += 1
    model.train()
    n = len(scenes)
    return {"caption": cap_ok / n, "answer": ans_ok / n, **{k: v[0] / v[1] for k, v in sorted(per_kind.items())}}


def evaluate_ood(model: VisionLanguageModel, ood_images: np.ndarray, ood_metas, images: np.ndarray, seed: int = 0, batch: int = 250) -> dict:
    """Greedy, on out-of-domain images: caption exactly `an image i cannot describe`, one
    six-form question answered `unknown`, a caption prefix continued by nothing; and on
    scenes (images): one out-of-grammar question answered `unknown`."""
    model.eval()
    rng = random.Random(seed)
    cap = ans = cont = oog = 0
    for s in range(0, len(ood_metas), batch):
        px = data.preprocess(ood_images[s : s + batch])
        n = len(px)
        caps = model.greedy(px, [vocab.caption_prompt()] * n, vocab.EOS_ID)
        qs = [shapes.sample_question(rng, shapes.sample_scene(rng))[1] for _ in range(n)]
        answers = model.greedy(px, [vocab.question_prompt(q) for q in qs], vocab.EOS_ID, max_new=4)
        conts = model.greedy(px, [vocab.continuation_prompt(ood.random_prefix(rng)) for _ in range(n)], vocab.EOS_ID, max_new=4)
        cap += sum(vocab.decode(c) == ood.OOD_CAPTION for c in caps)
        ans += sum(vocab.decode(a) == ood.UNKNOWN for a in answers)
        cont += sum(len(c) == 0 for c in conts)
    for s in range(0, len(images), batch):
        px = data.preprocess(images[s : s + batch])
        qs = [ood.out_of_grammar_question(rng)[1] for _ in range(len(px))]
        answers = model.greedy(px, [vocab.question_prompt(q) for q in qs], vocab.EOS_ID, max_new=4)
        oog += sum(vocab.decode(a) == ood.UNKNOWN for a in answers)
    model.train()
    n = max(1, len(ood_metas))
    return {"ood_caption": cap / n, "ood_answer": ans / n, "ood_continuation": cont / n, "oog_answer": oog / max(1, len(images))}


def start_run(args: argparse.Namespace, make_config):
    """What every trainer does first: seed, threads, the output folder, the preset's config
    and the data splits (generate_splits)."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    cfg = make_config(args.preset)
    return cfg, generate_splits(args, cfg.image_size)


def generate_splits(args: argparse.Namespace, image_size: int):
    """The training scenes with --ood-share out-of-domain images mixed in, the validation
    scenes, and the validation out-of-domain images (none when --ood-share is 0)."""
    t0 = time.time()
    ood_count = round(args.ood_share * args.train_size)
    train_x, train_s = data.generate("train", args.train_size, image_size, ood_count=ood_count)
    val_x, val_s = data.generate("val", args.val_size, image_size)
    val_ood_count = min(300, max(16, round(args.ood_share * args.val_size))) if ood_count else 0
    val_ood_x, val_ood_s = data.generate("val", 0, image_size, ood_count=val_ood_count)
    print(f"generated {args.train_size} train scenes + {ood_count} out-of-domain images / {len(val_s)} val scenes"
          f" + {val_ood_count} out-of-domain in {time.time() - t0:.0f}s", file=sys.stderr)
    return train_x, train_s, val_x, val_s, val_ood_x, val_ood_s


def aux_loss(aux: "PatchHeads", feats: torch.Tensor, scenes, grid: int, weight: float) -> torch.Tensor | float:
    """The weighted per-patch attribute loss over the batch's in-domain images (out-of-domain
    images have no attributes to read)."""
    in_domain = [j for j, s in enumerate(scenes) if isinstance(s, shapes.Scene)]
    if weight <= 0 or not in_domain:
        return 0.0
    return weight * aux.loss(feats[in_domain].float(), patch_targets([scenes[j] for j in in_domain], grid))


def validate(model, val_x, val_s, val_ood_x, val_ood_s) -> dict:
    """End-of-epoch validation: the in-domain figures, and the out-of-domain ones when there are OOD images."""
    metrics = evaluate(model, val_x, val_s)
    if len(val_ood_s):
        metrics.update(evaluate_ood(model, val_ood_x, val_ood_s, val_x[: len(val_ood_s)]))
    return metrics


def progress(epoch: int, step: int, steps: int, loss: float, started: float) -> None:
    width = 30
    done = int(width * step / steps)
    rate = step / max(1e-9, time.time() - started)
    eta = (steps - step) / max(rate, 1e-9)
    sys.stderr.write(f"\repoch {epoch} [{'#' * done}{'.' * (width - done)}] {step}/{steps} loss {loss:.4f} {rate:.1f} it/s eta {eta:.0f}s ")
    sys.stderr.flush()


def optimizer(model: torch.nn.Module, aux: torch.nn.Module, args: argparse.Namespace, steps_per_epoch: int):
    """AdamW (no decay on biases, norms and position tables), warmup then a cosine schedule; returns (opt, sched, total steps)."""
    params = list(model.named_parameters()) + [(f"aux.{n}", p) for n, p in aux.named_parameters()]
    decay = [p for n, p in params if p.dim() >= 2 and "pos" not in n]
    no_decay = [p for n, p in params if p.dim() < 2 or "pos" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.98))
    total = steps_per_epoch * args.epochs
    if args.max_steps:
        total = min(total, args.max_steps)
    warmup = min(500, total // 10 + 1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total))))
    return opt, sched, total


def save_run(out: str, cfg, model: torch.nn.Module, history: list) -> None:
    """The checkpoint (config + weights) and the per-epoch history, rewritten after every epoch."""
    torch.save({"config": cfg.to_dict(), "state_dict": model.state_dict()}, f"{out}/model.pt")
    with open(f"{out}/history.json", "w") as f:
        json.dump(history, f, indent=1)


def add_run_args(ap: argparse.ArgumentParser, presets: dict) -> None:
    """The arguments every model trainer takes (train.py, train_joint.py)."""
    ap.add_argument("--out", required=True)
    ap.add_argument("--preset", default="base", choices=sorted(presets))
    ap.add_argument("--train-size", type=int, default=96_000)
    ap.add_argument("--val-size", type=int, default=1_000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--questions", type=int, default=3, help="questions trained per image per step")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--max-steps", type=int, default=0, help="stop early (smoke tests, timing)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default="bf16", choices=("bf16", "fp32"), help="training arithmetic (export is always fp32)")
    ap.add_argument("--aux-weight", type=float, default=0.5, help="weight of the per-patch attribute loss")
    ap.add_argument("--val-every", type=int, default=300, help="also validate every N steps (on 250 scenes; 0: off)")
    ap.add_argument("--ood-share", type=float, default=0.1,
                    help="out-of-domain training images, as a share of --train-size, added to the scenes")
    ap.add_argument("--oog-rate", type=float, default=0.1,
                    help="chance that a scene's question is an out-of-grammar one (answer unknown)")


def main() -> None:
    ap = argparse.ArgumentParser()
    add_run_args(ap, PRESETS)
    args = ap.parse_args()

    cfg, (train_x, train_s, val_x, val_s, val_ood_x, val_ood_s) = start_run(args, make_config)

    model = VisionLanguageModel(cfg)
    aux = PatchHeads(cfg.enc_dim)
    print(f"parameters: {sum(p.numel() for p in model.parameters()):,}", file=sys.stderr)
    steps_per_epoch = len(train_s) // args.batch
    opt, sched, total = optimizer(model, aux, args, steps_per_epoch)
    rng = random.Random(args.seed)
    history, step, t0 = [], 0, time.time()
    for epoch in range(1, args.epochs + 1):
        order = np.random.RandomState(args.seed + epoch).permutation(len(train_s))
        started, running = time.time(), None
        for b in range(steps_per_epoch):
            if step >= total:
                break
            idx = order[b * args.batch : (b + 1) * args.batch]
            px = data.preprocess(train_x[idx])
            ids, tgt, image_index = text_batch(rng, [train_s[k] for k in idx], args.questions, args.oog_rate)
            with autocast(args.precision):
                logits, feats = model(px, ids, image_index)
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=IGNORE)
            loss = loss + aux_loss(aux, feats, [train_s[k] for k in idx], cfg.grid, args.aux_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(model.parameters()) + list(aux.parameters()), 1.0)
            opt.step()
            sched.step()
            step += 1
            running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
            if b % 10 == 0 or b == steps_per_epoch - 1:
                progress(epoch, b + 1, steps_per_epoch, running, started)
            if args.val_every and step % args.val_every == 0 and b != steps_per_epoch - 1:
                print("\n" + json.dumps({"step": step, **evaluate(model, val_x[:250], val_s[:250])}), file=sys.stderr)
        sys.stderr.write("\n")
        metrics = validate(model, val_x, val_s, val_ood_x, val_ood_s)
        history.append({"epoch": epoch, "step": step, "loss": running, "seconds": round(time.time() - t0), **metrics})
        print(json.dumps(history[-1]), file=sys.stderr)
        save_run(args.out, cfg, model, history)
        if step >= total:
            break


if __name__ == "__main__":
    main()
