"""Teacher-forced training of the joint-embedding model (shapes-joint), validation every epoch.

usage: train_joint.py --out DIR [--preset base|tiny] [--train-size N] [--epochs N] ...
Writes DIR/model.pt (weights + config) and DIR/history.json. Same data, tasks, augmentation,
optimizer, schedule and auxiliary per-patch loss as train.py (imported from it and from
data.py, not forked); only the model and the packing of the text rows differ.

Packing: train.py trains one caption and --questions questions per image. Here each of them
would need the image's tokens in front of it, so they share one: a packed row is
[image tokens][segment 1][segment 2]..., every segment attends to the image tokens and
causally to itself only, and its positions restart right after the image. For each segment
this is exactly the sequence [image tokens][task prompt][text] seen at inference (same
keys, same positions), at a quarter of the cost.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import data
import train
import vocab
from model_joint import NEG, PRESETS, JointVLM, make_config

IGNORE = train.IGNORE


def pack(rng: random.Random, scenes, num_questions: int, num_image_tokens: int, image_id: int, oog_rate: float = 0.0):
    """Packed teacher-forcing rows, one per scene: ids, targets, position_ids [b, T] and the
    additive attention bias [b, 1, T, T]."""
    n = num_image_tokens
    rows = []
    for scene in scenes:
        ids, tgt, seg, pos = [image_id] * n, [IGNORE] * n, [0] * n, list(range(n))
        for j, (i, t) in enumerate(train.sequences(rng, scene, num_questions, oog_rate)):
            ids += i
            tgt += t
            seg += [j + 1] * len(i)
            pos += range(n, n + len(i))
        rows.append((ids, tgt, seg, pos))
    width = max(len(r[0]) for r in rows)
    b = len(rows)
    ids = torch.full((b, width), vocab.PAD_ID, dtype=torch.long)
    tgt = torch.full((b, width), IGNORE, dtype=torch.long)
    seg = torch.full((b, width), -1, dtype=torch.long)
    pos = torch.zeros(b, width, dtype=torch.long)
    for r, (i, t, s, p) in enumerate(rows):
        ids[r, : len(i)] = torch.tensor(i)
        tgt[r, : len(t)] = torch.tensor(t)
        seg[r, : len(s)] = torch.tensor(s)
        pos[r, : len(p)] = torch.tensor(p)
    q = torch.arange(width)
    causal = (q.unsqueeze(0) <= q.unsqueeze(1)).unsqueeze(0)  # [1, T(query), T(key)]
    same = (seg.unsqueeze(2) == seg.unsqueeze(1)) | (seg == 0).unsqueeze(1)
    bias = (~(causal & same)).to(torch.float32).unsqueeze(1) * NEG
    return ids, tgt, pos, bias


def main() -> None:
    ap = argparse.ArgumentParser()
    train.add_run_args(ap, PRESETS)
    args = ap.parse_args()

    t0 = time.time()
    cfg, (train_x, train_s, val_x, val_s, val_ood_x, val_ood_s) = train.start_run(args, make_config)

    model = JointVLM(cfg)
    aux = train.PatchHeads(cfg.enc_dim)
    print(f"parameters: {sum(p.numel() for p in model.parameters()):,}", file=sys.stderr)
    steps_per_epoch = len(train_s) // args.batch
    opt, sched, total = train.optimizer(model, aux, args, steps_per_epoch)
    rng = random.Random(args.seed)
    history, step = [], 0
    step_times: list[float] = []
    for epoch in range(1, args.epochs + 1):
        order = np.random.RandomState(args.seed + epoch).permutation(len(train_s))
        started, running = time.time(), None
        for b in range(steps_per_epoch):
            if step >= total:
                break
            ts = time.time()
            idx = order[b * args.batch : (b + 1) * args.batch]
            batch_scenes = [train_s[k] for k in idx]
            px = data.preprocess(train_x[idx])
            ids, tgt, pos, bias = pack(rng, batch_scenes, args.questions, cfg.num_image_tokens, cfg.image_token_id, args.oog_rate)
            with train.autocast(args.precision):
                logits, feats = model(px, ids, bias, pos)
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=IGNORE)
            loss = loss + train.aux_loss(aux, feats, batch_scenes, cfg.grid, args.aux_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(model.parameters()) + list(aux.parameters()), 1.0)
            opt.step()
            sched.step()
            step += 1
            step_times.append(time.time() - ts)
            running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
            if b % 10 == 0 or b == steps_per_epoch - 1:
                train.progress(epoch, b + 1, steps_per_epoch, running, started)
            if args.val_every and step % args.val_every == 0 and b != steps_per_epoch - 1:
                print("\n" + json.dumps({"step": step, **train.evaluate(model, val_x[:250], val_s[:250])}), file=sys.stderr)
        sys.stderr.write("\n")
        metrics = train.validate(model, val_x, val_s, val_ood_x, val_ood_s)
        timing = sorted(step_times[1:] or step_times)  # the first step warms up
        history.append({"epoch": epoch, "step": step, "loss": running, "seconds": round(time.time() - t0),
                        "median_step_seconds": round(timing[len(timing) // 2], 4), **metrics})
        print(json.dumps(history[-1]), file=sys.stderr)
        train.save_run(args.out, cfg, model, history)
        if step >= total:
            break


if __name__ == "__main__":
    main()
