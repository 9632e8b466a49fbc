"""The spec's quality table, measured in PyTorch on a labelled folder.

usage: evaluate.py --checkpoint model.pt --folder DIR [--out eval.json] [--ood-out eval_ood.json] [--joint]
For each image variant (png128, jpeg64, jpeg256), on the scenes ("domain": "in"): caption
exact match, answer exact match over all questions and per question kind, and
caption-continuation exact match (--out; the format iris eval's table has).
Out of domain (--ood-out), per variant and per kind of OOD image: captions exactly
`an image i cannot describe`, six-form questions answered `unknown`, out-of-grammar
questions answered `unknown`, continuations that end at once (no word after the prefix);
and on the scenes: out-of-grammar questions answered `unknown` (per family), and scenes
wrongly captioned `an image i cannot describe`.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

import data
import ood
import vocab
from export import load


def read_rows(folder: str) -> list[dict]:
    return [json.loads(line) for line in open(f"{folder}/labels.jsonl") if line.strip()]


def table(model, folder: str, batch: int = 200) -> dict:
    rows = [r for r in read_rows(folder) if r.get("domain", "in") == "in"]
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


def pct(ok: int, n: int) -> float:
    return round(100 * ok / n, 2) if n else float("nan")


# The spec's bars out of domain (%): OOD captions, unknown answers about OOD images,
# unknown answers to out-of-grammar questions about scenes.
OOD_BARS = {"caption": 95.0, "answer": 95.0, "scenes_out_of_grammar": 95.0}


def _answers(model, px, items, batch_rows):
    """items: (image index into px, question) -> greedy answers as text."""
    out = []
    for s in range(0, len(items), batch_rows):
        part = items[s : s + batch_rows]
        got = model.greedy(px[[j for j, _ in part]], [vocab.question_prompt(q) for _, q in part], vocab.EOS_ID, max_new=4)
        out += [vocab.decode(a) for a in got]
    return out


def ood_table(model, folder: str, batch: int = 200) -> dict:
    """The out-of-domain figures (%), per variant: totals and per kind of OOD image, and
    out-of-grammar questions about the folder's scenes."""
    rows = read_rows(folder)
    oods = [r for r in rows if r.get("domain") == "ood"]
    scenes = [r for r in rows if r.get("domain", "in") == "in" and r.get("out_of_grammar")]
    size = model.cfg.image_size
    result = {}
    for variant in data.VARIANTS:
        tallies: dict[str, dict[str, list[int]]] = {}

        def add(kind: str, measure: str, ok: bool) -> None:
            t = tallies.setdefault(kind, {}).setdefault(measure, [0, 0])
            t[0] += int(ok)
            t[1] += 1

        for s in range(0, len(oods), batch):
            part = oods[s : s + batch]
            px = data.preprocess(np.stack([data.load_folder_image(f"{folder}/{r['images'][variant]}", size) for r in part]))
            caps = model.greedy(px, [vocab.caption_prompt()] * len(part), vocab.EOS_ID)
            conts = model.greedy(px, [vocab.continuation_prompt(r["continuation"]["prefix"]) for r in part], vocab.EOS_ID, max_new=4)
            for r, c, k in zip(part, caps, conts):
                add(r["kind"], "caption", vocab.decode(c) == ood.OOD_CAPTION)
                add(r["kind"], "continuation", len(k) == 0)
            for measure, field in (("answer", "questions"), ("out_of_grammar", "out_of_grammar")):
                items = [(j, q) for j, r in enumerate(part) for q in r.get(field, [])]
                got = _answers(model, px, [(j, q["question"]) for j, q in items], batch)
                for (j, q), a in zip(items, got):
                    add(part[j]["kind"], measure, a == q["answer"])
        families: dict[str, list[int]] = {}
        refused = 0
        for s in range(0, len(scenes), batch):
            part = scenes[s : s + batch]
            px = data.preprocess(np.stack([data.load_folder_image(f"{folder}/{r['images'][variant]}", size) for r in part]))
            caps = model.greedy(px, [vocab.caption_prompt()] * len(part), vocab.EOS_ID)
            refused += sum(vocab.decode(c) == ood.OOD_CAPTION for c in caps)
            items = [(j, q) for j, r in enumerate(part) for q in r["out_of_grammar"]]
            got = _answers(model, px, [(j, q["question"]) for j, q in items], batch)
            for (_, q), a in zip(items, got):
                f = families.setdefault(q["family"], [0, 0])
                f[0] += int(a == q["answer"])
                f[1] += 1

        def total(measure: str) -> list[int]:
            return [sum(t.get(measure, [0, 0])[i] for t in tallies.values()) for i in (0, 1)]

        oog_scenes = [sum(f[i] for f in families.values()) for i in (0, 1)]
        v = {
            "images": len(oods),
            "photos": sum(r["kind"] == "photo" for r in oods),
            **{m: pct(*total(m)) for m in ("caption", "answer", "out_of_grammar", "continuation")},
            "questions": total("answer")[1],
            "by_kind": {k: {"images": t["caption"][1], **{m: pct(*t[m]) for m in ("caption", "answer", "out_of_grammar", "continuation") if m in t}}
                        for k, t in sorted(tallies.items(), key=lambda kv: ood.KINDS.index(kv[0]) if kv[0] in ood.KINDS else 99)},
            "scenes": len(scenes),
            "scenes_out_of_grammar": pct(*oog_scenes),
            "scenes_out_of_grammar_questions": oog_scenes[1],
            "scenes_out_of_grammar_by_family": {f: pct(*t) for f, t in sorted(families.items())},
            "scenes_refused": pct(refused, len(scenes)),
        }
        v["meets_spec"] = bool(v["images"] >= 500 and v["photos"] >= 100 and all(v[m] >= bar for m, bar in OOD_BARS.items()))
        result[variant] = v
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--folder", required=True)
    ap.add_argument("--out")
    ap.add_argument("--ood-out", help="also measure the out-of-domain part of the folder and write it here")
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
    if args.ood_out:
        text = json.dumps(ood_table(model, args.folder), indent=2)
        print(text)
        with open(args.ood_out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
