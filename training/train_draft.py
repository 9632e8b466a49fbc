"""Trains the draft model for speculative decoding: a one-layer decoder that reads the
main model's image features and learns to predict what the main decoder would say.

usage: train_draft.py --teacher model.pt --out DIR [--steps N] ...

The draft shares the main model's encoder (copied, frozen), tokenizer and embedding
width, so at serving time it is conditioned on the very features the main encoder
already computed; only its decoder is exported. It is trained by distillation: the
KL divergence from the main decoder's next-token distribution at every position, plus
the usual cross-entropy on the true next token. Matching the main model's argmax is
what makes drafts accepted; matching its distribution keeps speculative sampling's
acceptance rate up too.
Writes DIR/model.pt (a full checkpoint, 1 decoder layer) and DIR/history.json.
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
import shapes
import vocab
from export import load
from model import ModelConfig, VisionLanguageModel
from train import IGNORE, autocast, collate, evaluate, progress, text_batch


def make_draft(teacher: VisionLanguageModel, layers: int) -> VisionLanguageModel:
    """Same encoder (frozen) and embeddings as the teacher, fewer decoder layers, each
    started from the teacher's layer of the same index."""
    cfg = ModelConfig(**{**teacher.cfg.to_dict(), "dec_layers": layers})
    draft = VisionLanguageModel(cfg)
    draft.encoder.load_state_dict(teacher.encoder.state_dict())
    draft.encoder.requires_grad_(False)
    own = draft.decoder.state_dict()
    draft.decoder.load_state_dict({k: v for k, v in teacher.decoder.state_dict().items() if k in own})
    return draft


def decoder_hidden(model: VisionLanguageModel, enc: torch.Tensor, ids: torch.Tensor, image_index: torch.Tensor) -> torch.Tensor:
    """Teacher-forced final hidden states [rows, seq, dim] of `model`'s decoder over
    projected image features enc [images, patches, dim] (what the LM head and Medusa heads read)."""
    cross = [(k[image_index], v[image_index]) for k, v in model.decoder.cross_kv(enc)]
    b, s = ids.shape
    mask = torch.ones(b, s, dtype=torch.long)
    pos = torch.arange(s).unsqueeze(0).expand(b, s)
    return model.decoder.step_hidden(ids, mask, pos, None, cross)[0]


def decoder_logits(model: VisionLanguageModel, enc: torch.Tensor, ids: torch.Tensor, image_index: torch.Tensor) -> torch.Tensor:
    """Teacher-forced logits [rows, seq, vocab]."""
    return model.decoder.lm_head(decoder_hidden(model, enc, ids, image_index))


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, ids: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) over real (non-pad) positions, plus cross-entropy on targets."""
    real = ids != vocab.PAD_ID  # [rows, seq]
    log_q = F.log_softmax(student[real] / temperature, -1)
    p = F.softmax(teacher[real] / temperature, -1)
    kl = (p * (torch.log(p.clamp_min(1e-9)) - log_q)).sum(-1).mean() * temperature**2
    ce = F.cross_entropy(student.reshape(-1, student.shape[-1]), targets.reshape(-1), ignore_index=IGNORE)
    return kl + 0.5 * ce


@torch.no_grad()
def own_greedy_rows(model: VisionLanguageModel, images: np.ndarray, scenes, seed: int = 0):
    """The model's own greedy caption and answer to one question for each scene, what
    speculation verifies against: the encoder output, the rows as teacher-forcing ids
    [rows, width], each row's (ids, prompt length), and each row's image index."""
    rng = random.Random(seed)
    px = data.preprocess(images)
    enc = model.encoder(px)
    questions = [shapes.sample_question(rng, s)[1] for s in scenes]
    prompts = [vocab.caption_prompt() for _ in scenes] + [vocab.question_prompt(q) for q in questions]
    image_index = torch.tensor(list(range(len(scenes))) * 2)
    outs = model.greedy(px, prompts[: len(scenes)], vocab.EOS_ID) + model.greedy(px, prompts[len(scenes):], vocab.EOS_ID, max_new=4)
    rows = [(p + o + [vocab.EOS_ID], len(p)) for p, o in zip(prompts, outs)]
    ids, _ = collate([(r, r) for r, _ in rows])
    return enc, ids, rows, image_index


@torch.no_grad()
def agreement(teacher: VisionLanguageModel, draft: VisionLanguageModel, images: np.ndarray, scenes, seed: int = 0) -> float:
    """Share of positions, along the teacher's own greedy captions and answers, where the
    draft's argmax equals the teacher's: the greedy acceptance rate of one drafted token."""
    hits = total = 0
    enc, ids, rows, image_index = own_greedy_rows(teacher, images, scenes, seed)
    t = decoder_logits(teacher, enc, ids, image_index).argmax(-1)
    d = decoder_logits(draft, enc, ids, image_index).argmax(-1)
    for i, (r, start) in enumerate(rows):
        span = slice(start - 1, len(r) - 1)  # positions that predict generated tokens
        hits += int((t[i, span] == d[i, span]).sum())
        total += len(r) - start
    return hits / max(total, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--teacher", required=True, help="the main model's model.pt")
    ap.add_argument("--out", required=True)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--train-size", type=int, default=16_000)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--questions", type=int, default=3)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default="bf16", choices=("bf16", "fp32"), help="training arithmetic (export is always fp32)")
    ap.add_argument("--ood-share", type=float, default=0.1, help="out-of-domain images, as in train.py")
    ap.add_argument("--oog-rate", type=float, default=0.1, help="out-of-grammar questions, as in train.py")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    teacher = load(args.teacher)
    teacher.requires_grad_(False)
    draft = make_draft(teacher, args.layers)
    t0 = time.time()
    train_x, train_s = data.generate("train", args.train_size, teacher.cfg.image_size,
                                     ood_count=round(args.ood_share * args.train_size))
    val_x, val_s = data.generate("val", 500, teacher.cfg.image_size)
    print(f"generated {len(train_s)} scenes in {time.time() - t0:.0f}s; draft decoder parameters: "
          f"{sum(p.numel() for p in draft.decoder.parameters()):,}", file=sys.stderr)

    params = list(draft.decoder.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    warmup = min(50, args.steps // 10 + 1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps))))
    rng = random.Random(args.seed)
    order = np.random.RandomState(args.seed).permutation(len(train_s))
    per_epoch = len(train_s) // args.batch
    started, running = time.time(), None
    for step in range(args.steps):
        b = step % per_epoch
        idx = order[b * args.batch : (b + 1) * args.batch]
        ids, tgt, image_index = text_batch(rng, [train_s[k] for k in idx], args.questions, args.oog_rate)
        with torch.no_grad(), autocast(args.precision):
            enc = teacher.encoder(data.preprocess(train_x[idx]))
            teacher_logits = decoder_logits(teacher, enc, ids, image_index).float()
        with autocast(args.precision):
            student_logits = decoder_logits(draft, enc, ids, image_index)
        loss = distill_loss(student_logits.float(), teacher_logits, ids, tgt, args.temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if step % 10 == 0 or step == args.steps - 1:
            progress(1, step + 1, args.steps, running, started)
    sys.stderr.write("\n")
    draft.eval()
    metrics = {"steps": args.steps, "loss": running, "seconds": round(time.time() - t0),
               "agreement_with_main": agreement(teacher, draft, val_x, val_s),
               "draft_alone": evaluate(draft, val_x, val_s)}
    print(json.dumps(metrics), file=sys.stderr)
    torch.save({"config": draft.cfg.to_dict(), "state_dict": draft.state_dict()}, f"{args.out}/model.pt")
    with open(f"{args.out}/history.json", "w") as f:
        json.dump(metrics, f, indent=1)


if __name__ == "__main__":
    main()
