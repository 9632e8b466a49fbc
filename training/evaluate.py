"""The spec's quality table, measured in PyTorch on a labelled folder.

usage: evaluate.py --checkpoint model.pt --folder DIR [--out eval.json] [--joint]
For each image variant (png128, jpeg64, jpeg256): caption exact match, answer exact
match over all questions and per question kind, and caption-continuation exact match.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

import data
import vocab
from export import load


def table(model, folder: str, batch: int = 200) -> dict:
    rows = [json.loads(line) for line in open(f"{folder}/labels.jsonl")]
    size = model.cfg.image_size
    result = {}
    for variant in data.VARIANTS:
        images = np.stack([data.load_folder_image(f"{folder}/{r['images'][variant]}", size) for r in rows])
        cap_ok = cont_ok = 0
        kinds: dict[str, list[int]] = {}
        for s in range(0, len(rows), batch):
            part, px = rows[s : s + batch], data.preprocess(images[s : s + batch])
            caps = model.greedy(px, [vocab.caption_prompt()] * len(part), vocab.EOS_ID)
            cap_ok += sum(vocab.decode(c) == r["caption"] for c, r in zip(caps, part))
            prompts = [vocab.continuation_prompt(r["continuation"]["prefix"]) for r in part]
            conts = model.greedy(px, prompts, vocab.EOS_ID)
            for r, p, c in zip(part, prompts, conts):
                cont_ok += vocab.decode(p + c) == r["caption"]
            qidx, qprompts = [], []
            for j, r in enumerate(part):
                for q in r["questions"]:
                    qidx.append((j, q))
                    qprompts.append(vocab.question_prompt(q["question"]))
            answers = model.greedy(px[[j for j, _ in qidx]], qprompts, vocab.EOS_ID, max_new=4)
            for (_, q), a in zip(qidx, answers):
                k = kinds.setdefault(q["kind"], [0, 0])
                k[0] += vocab.decode(a) == q["answer"]
                k[1] += 1
        n_q = sum(v[1] for v in kinds.values())
        result[variant] = {
            "scenes": len(rows),
            "caption": round(100 * cap_ok / len(rows), 2),
            "answer": round(100 * sum(v[0] for v in kinds.values()) / n_q, 2),
            "questions": n_q,
            "continuation": round(100 * cont_ok / len(rows), 2),
            "by_kind": {k: round(100 * v[0] / v[1], 2) for k, v in sorted(kinds.items())},
        }
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--folder", required=True)
    ap.add_argument("--out")
    ap.add_argument("--joint", action="store_true", help="a train_joint.py checkpoint (shapes-joint)")
    args = ap.parse_args()
    if args.joint:
        import model_joint
        model = model_joint.load(args.checkpoint)
    else:
        model = load(args.checkpoint)
    result = table(model, args.folder)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
