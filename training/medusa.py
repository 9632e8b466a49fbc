"""Medusa heads for speculative decoding without a draft model.

usage: medusa.py --model DIR [--heads 4] [--steps N] ...   (trains the heads, writes DIR/medusa/)

Each head k (1..K) reads the decoder's final hidden state at position t, the same vector
the LM head reads, and predicts the token at t+1+k: head(h) = lm_head(h + SiLU(W_k h + b_k))
(Medusa-1: one residual block per head, the tied LM head shared and frozen, W_k starting at
zero so every head starts as a copy of the next-token prediction). The base model is frozen
and rebuilt from the folder's ONNX files (from_onnx.py), so the heads fit the shipped
weights exactly and nothing else changes.

The export is DIR/medusa/onnx/{decoder_model_merged,decoder_with_past_model}.onnx: the
folder's two decoders with one more output, `medusa_logits` [batch, seq, K, vocab], computed
in the same call. Their `logits` and `present.*` are the folder's own (same weights, same
nodes). DIR/medusa/config.json is the folder's config plus `medusa_num_heads` and
`medusa_num_layers`; DIR/medusa/history.json has the training run and the heads' accuracy.
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
import torch.nn as nn
import torch.nn.functional as F

import data
import export
from from_onnx import load_folder
from model import VisionLanguageModel
from train import IGNORE, progress, text_batch
from train_draft import decoder_hidden, own_greedy_rows

FOLDER = "medusa"


class MedusaHeads(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.blocks = nn.ModuleList(nn.Linear(dim, dim) for _ in range(num_heads))
        for blk in self.blocks:
            nn.init.zeros_(blk.weight)
            nn.init.zeros_(blk.bias)

    def forward(self, hidden: torch.Tensor, lm_head) -> torch.Tensor:
        """[..., dim] -> [..., K, vocab]."""
        return torch.stack([lm_head(hidden + F.silu(blk(hidden))) for blk in self.blocks], dim=-2)


def head_targets(tgt: torch.Tensor, k: int) -> torch.Tensor:
    """Head k's targets: the next-token targets shifted k left (IGNORE past the end)."""
    out = torch.full_like(tgt, IGNORE)
    out[:, :-k] = tgt[:, k:]
    return out


@torch.no_grad()
def accuracy(model: VisionLanguageModel, heads: MedusaHeads, images: np.ndarray, scenes, seed: int = 0) -> dict:
    """Along the model's own greedy captions and answers (what speculation verifies
    against): each head's top-1 agreement with the token k+1 ahead, and the mean number of
    tokens one verify step would keep with greedy chains of all K heads (1 + the run of
    heads that agree, counted at every position)."""
    enc, ids, rows, image_index = own_greedy_rows(model, images, scenes, seed)
    guesses = heads(decoder_hidden(model, enc, ids, image_index), model.decoder.lm_head).argmax(-1)  # [rows, seq, K]
    K = guesses.shape[2]
    hits, totals, kept, positions = [0] * K, [0] * K, 0, 0
    for i, (r, start) in enumerate(rows):
        for t in range(start - 1, len(r) - 1):  # position t predicts r[t+1]; head k predicts r[t+1+k]
            run, alive = 1, True
            for k in range(1, K + 1):
                if t + 1 + k >= len(r):
                    break
                ok = int(guesses[i, t, k - 1]) == r[t + 1 + k]
                hits[k - 1] += ok
                totals[k - 1] += 1
                alive = alive and ok
                run += alive
            kept += run
            positions += 1
    return {"head_top1": [round(h / max(t, 1), 4) for h, t in zip(hits, totals)],
            "tokens_per_step": round(kept / max(positions, 1), 3)}


def export_folder(model: VisionLanguageModel, heads: MedusaHeads, src: str, out: str, history: dict) -> dict:
    os.makedirs(f"{out}/onnx", exist_ok=True)
    merged = f"{out}/onnx/decoder_model_merged.onnx"
    export.export_encdec_decoder(model, merged, attentions=False, heads=heads)
    export.write_decode_graph(merged, f"{out}/onnx/{export.DECODE_GRAPH}", model.cfg.num_patches)
    with open(f"{src}/config.json") as f:
        config = json.load(f)
    config.update({"medusa_num_heads": len(heads.blocks), "medusa_num_layers": 1})
    with open(f"{out}/config.json", "w") as f:
        json.dump(config, f, indent=2)
    with open(f"{out}/history.json", "w") as f:
        json.dump(history, f, indent=1)
    return {n: os.path.getsize(f"{out}/onnx/{n}") for n in sorted(os.listdir(f"{out}/onnx"))}


def training_positions(model: VisionLanguageModel, images: np.ndarray, scenes, args) -> tuple[torch.Tensor, torch.Tensor]:
    """The frozen model's hidden state at every position that predicts a token, and the
    K tokens after that one (IGNORE past the end): [P, dim] and [P, K]. Computed once, so
    the heads train for many epochs at the cost of their own few matrix products."""
    rng = random.Random(args.seed)
    hiddens, targets = [], []
    with torch.no_grad():
        for start in range(0, len(scenes), args.batch):
            idx = range(start, min(start + args.batch, len(scenes)))
            ids, tgt, image_index = text_batch(rng, [scenes[k] for k in idx], args.questions, args.oog_rate)
            hidden = decoder_hidden(model, model.encoder(data.preprocess(images[list(idx)])), ids, image_index)
            ahead = torch.stack([head_targets(tgt, k) for k in range(1, args.heads + 1)], dim=-1)  # [rows, seq, K]
            keep = tgt != IGNORE  # positions whose next token is trained: the ones generation runs through
            hiddens.append(hidden[keep])
            targets.append(ahead[keep])
    return torch.cat(hiddens), torch.cat(targets)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="an exported encdec folder (its heads go to DIR/medusa)")
    ap.add_argument("--out", help="default: MODEL/medusa")
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--train-size", type=int, default=8_000)
    ap.add_argument("--val-size", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--batch", type=int, default=64, help="images per batch when computing hidden states")
    ap.add_argument("--positions", type=int, default=4096, help="positions per training step")
    ap.add_argument("--questions", type=int, default=3)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ood-share", type=float, default=0.1, help="out-of-domain images, as in train.py")
    ap.add_argument("--oog-rate", type=float, default=0.1, help="out-of-grammar questions, as in train.py")
    args = ap.parse_args()
    out = args.out or f"{args.model}/{FOLDER}"

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    model = load_folder(args.model)
    model.requires_grad_(False)
    heads = MedusaHeads(model.cfg.dec_dim, args.heads)
    t0 = time.time()
    train_x, train_s = data.generate("train", args.train_size, model.cfg.image_size,
                                     ood_count=round(args.ood_share * args.train_size))
    val_x, val_s = data.generate("val", args.val_size, model.cfg.image_size)
    hidden, targets = training_positions(model, train_x, train_s, args)
    print(f"generated {len(train_s)} scenes and {len(hidden)} positions in {time.time() - t0:.0f}s", file=sys.stderr)

    steps = args.epochs * math.ceil(len(hidden) / args.positions)
    opt = torch.optim.AdamW(heads.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.0)
    warmup = min(50, steps // 10 + 1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))
    gen = torch.Generator().manual_seed(args.seed)
    started, running, step = time.time(), None, 0
    for epoch in range(args.epochs):
        for batch in torch.randperm(len(hidden), generator=gen).split(args.positions):
            logits = heads(hidden[batch], model.decoder.lm_head)  # [positions, K, vocab]
            loss = sum(F.cross_entropy(logits[:, k], targets[batch, k], ignore_index=IGNORE) * (0.8 ** k)
                       for k in range(args.heads))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        progress(epoch + 1, step, steps, running, started)
    sys.stderr.write("\n")
    history = {"heads": args.heads, "epochs": args.epochs, "steps": steps, "train_size": args.train_size, "val_size": args.val_size,
               "positions": len(hidden), "loss": running, "seconds": round(time.time() - t0),
               "validation": accuracy(model, heads, val_x, val_s)}
    print(json.dumps(history), file=sys.stderr)
    sizes = export_folder(model, heads, args.model, out, history)
    print(json.dumps({"exported": out, "bytes": sizes, "validation": history["validation"]}))


if __name__ == "__main__":
    main()
