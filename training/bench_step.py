"""Training step time of shapes-joint vs shapes-base, interleaved so both see the same load.

usage: bench_step.py [--joint-preset base] [--steps 12] [--batch 64] [--precision bf16]
One step = what train.py / train_joint.py do per step (text rows, forward, loss with the
auxiliary patch loss, backward, clipping, AdamW), on the same real augmented scenes. The
steps alternate (base, joint, base, ...) and the medians are compared, so the ratio holds
on a machine shared with other jobs even when the absolute times do not. shapes-base's full
training (4,500 steps) took 32.9 min in its last run (assets/models/shapes-base/README.md):
the joint projection is that times the ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import time

import torch
import torch.nn.functional as F

import data
import train
import train_joint
from model import VisionLanguageModel
from model_joint import JointVLM, make_config

BASE_FULL_MINUTES, BASE_FULL_STEPS = 32.9, 4500


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--joint-preset", default="base")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", nargs="*", default=[], help="override joint config fields, e.g. layers=3")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    x, scenes = data.generate("train", args.batch * 4, 64)
    rng = random.Random(0)

    base = VisionLanguageModel(train.make_config("base"))
    base_aux = train.PatchHeads(base.cfg.enc_dim)
    jcfg = make_config(args.joint_preset)
    for kv in args.set:
        k, v = kv.split("=")
        setattr(jcfg, k, type(getattr(jcfg, k))(v))
    joint = JointVLM(jcfg)
    joint_aux = train.PatchHeads(jcfg.enc_dim)
    opts = {m: torch.optim.AdamW(list(m.parameters()) + list(a.parameters()), lr=1e-3)
            for m, a in ((base, base_aux), (joint, joint_aux))}

    def step(model, aux, k):
        idx = list(range((k % 4) * args.batch, (k % 4 + 1) * args.batch))
        sc = [scenes[i] for i in idx]
        px = data.preprocess(x[idx])
        t = time.time()
        with train.autocast(args.precision):
            if model is base:
                ids, tgt, image_index = train.text_batch(rng, sc, 3)
                logits, feats = model(px, ids, image_index)
            else:
                ids, tgt, pos, bias = train_joint.pack(rng, sc, 3, jcfg.num_image_tokens, jcfg.image_token_id)
                logits, feats = model(px, ids, bias, pos)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=train.IGNORE)
        loss = loss + 0.5 * aux.loss(feats.float(), train.patch_targets(sc, model.cfg.grid))
        opts[model].zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(model.parameters()) + list(aux.parameters()), 1.0)
        opts[model].step()
        return time.time() - t

    step(base, base_aux, 0), step(joint, joint_aux, 0)  # warm-up
    tb, tj = [], []
    for k in range(args.steps):
        tb.append(step(base, base_aux, k))
        tj.append(step(joint, joint_aux, k))
    med = lambda v: sorted(v)[len(v) // 2]
    ratio = med([j / b for j, b in zip(tj, tb)])
    print(json.dumps({
        "batch": args.batch, "precision": args.precision, "steps": args.steps, "load_average": os.getloadavg(),
        "base_median_s": round(med(tb), 3), "joint_median_s": round(med(tj), 3), "joint_over_base": round(ratio, 3),
        "joint_overrides": args.set, "joint_params": sum(p.numel() for p in joint.parameters()),
        "joint_full_train_minutes_projected": round(BASE_FULL_MINUTES * ratio, 1),
    }))


if __name__ == "__main__":
    main()
