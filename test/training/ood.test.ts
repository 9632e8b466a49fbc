// Out of domain (spec "Out of domain: say so instead of guessing"), the Python side: the
// generator in training/ood.py draws every kind of image deterministically per seed, keeps
// test photographs' sources away from training, writes labelled folders whose boxes hold
// the rendered objects, asks out-of-grammar questions that are none of the six forms, and
// its training rows and tokenizer say what the spec says. Each check runs a few seconds of
// Python (/usr/bin/python3, as npm run train does).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { TextTokenizer } from '../../text/tokenizer.ts';
import { ROOT } from '../helpers.ts';

const TRAINING = join(ROOT, 'training');
const KINDS = ['photo', 'text', 'noise', 'gradient', 'empty', 'many_objects', 'overlapping', 'other_shapes', 'background'];
const SHAPES = ['circle', 'square', 'triangle'];
const COLORS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange'];

/** Runs Python code in training/ and parses the JSON it prints last. */
function py<T>(code: string): T {
  const out = execFileSync('/usr/bin/python3', ['-c', code], { cwd: TRAINING, encoding: 'utf8', timeout: 120_000 });
  return JSON.parse(out.trim().split('\n').at(-1) ?? 'null') as T;
}

/** The six question forms of the spec, for every shape and color, written out here from the spec. */
function sixForms(): Set<string> {
  const qs = ['how many shapes are there?'];
  for (const s of SHAPES) qs.push(`what color is the ${s}?`, `is the ${s} small or large?`);
  for (const c of COLORS) {
    qs.push(`what shape is the ${c} object?`, `how many ${c} shapes are there?`);
    for (const s of SHAPES) qs.push(`is there a ${c} ${s}?`);
  }
  return new Set(qs.map(normalize));
}

/** Case, spacing and the space before punctuation do not make a question another form. */
function normalize(q: string): string {
  return q.toLowerCase().replace(/([?,.!])/g, ' $1 ').replace(/\s+/g, ' ').trim();
}

describe('out-of-domain generator (training/ood.py)', () => {
  const work = mkdtempSync(join(tmpdir(), 'iris-ood-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('draws every kind, the same image for the same seed, different images for different seeds', () => {
    const r = py<{ same: Record<string, boolean>; distinct: Record<string, number>; weighted: Record<string, number>; sizes: number[][] }>(`
import hashlib, json, collections, ood
h = lambda img: hashlib.sha256(img.tobytes()).hexdigest()
same, distinct, sizes = {}, {}, []
for k in ood.KINDS:
    a = [ood.sample('test', i, k)[0] for i in range(6)]
    b = [ood.sample('test', i, k)[0] for i in range(6)]
    same[k] = all(h(x) == h(y) for x, y in zip(a, b))
    distinct[k] = len({h(x) for x in a})
    sizes += [list(x.size) for x in a]
weighted = collections.Counter(ood.sample('train', i)[1].kind for i in range(400))
print(json.dumps({"same": same, "distinct": distinct, "weighted": weighted, "sizes": sizes}))`);
    for (const k of KINDS) {
      expect(r.same[k], k).toBe(true);
      expect(r.distinct[k], k).toBeGreaterThanOrEqual(k === 'empty' ? 3 : 6);
      expect(r.weighted[k] ?? 0, k).toBeGreaterThan(10); // the training mix draws every kind
    }
    expect(Object.keys(r.weighted).sort()).toEqual([...KINDS].sort());
    expect(new Set(r.sizes.map((s) => s.join('x')))).toEqual(new Set(['128x128']));
  }, 60_000);

  it('training images of a split are deterministic and their scenes do not depend on the OOD count', () => {
    const r = py<{ same: boolean; scenesSame: boolean; kinds: string[] }>(`
import hashlib, json, data, ood
a = data.generate('smoke', 8, 64, workers=1, ood_count=12)
b = data.generate('smoke', 8, 64, workers=1, ood_count=12)
c = data.generate('smoke', 8, 64, workers=1)
print(json.dumps({"same": a[0].tobytes() == b[0].tobytes() and [m.to_json() for m in a[1][8:]] == [m.to_json() for m in b[1][8:]],
                  "scenesSame": a[0][:8].tobytes() == c[0].tobytes(),
                  "kinds": [m.kind if isinstance(m, ood.OODImage) else "scene" for m in a[1]]}))`);
    expect(r.same).toBe(true);
    expect(r.scenesSame).toBe(true);
    expect(r.kinds.slice(0, 8)).toEqual(Array(8).fill('scene'));
    expect(r.kinds.slice(8).every((k) => KINDS.includes(k))).toBe(true);
  }, 60_000);

  it('never shows a test photograph\'s source image to the train or validation splits', () => {
    const r = py<Record<string, string[]>>(`
import json, ood
out = {}
for split, n in (("train", 600), ("val", 200), ("test", 300)):
    out[split] = sorted({s for i in range(n) for s in ood.sample(split, i, "photo")[1].sources})
print(json.dumps(out))`);
    const source = (s: string): string => (s.startsWith('fashion-mnist:') ? s : s.split(':').slice(0, 2).join(':'));
    const test = new Set(r.test.map(source));
    expect(test.size).toBeGreaterThan(100);
    for (const split of ['train', 'val']) {
      const overlap = r[split].map(source).filter((s) => test.has(s));
      expect(overlap, split).toEqual([]);
      expect(r[split].length, split).toBeGreaterThan(50);
    }
    // test photographs: the t10k file of Fashion-MNIST, and wallpapers of the test list only
    expect(r.test.some((s) => s.startsWith('wallpaper:'))).toBe(true);
    expect(r.test.filter((s) => s.startsWith('fashion-mnist:')).every((s) => s.startsWith('fashion-mnist:t10k:'))).toBe(true);
    expect(r.train.filter((s) => s.startsWith('fashion-mnist:')).every((s) => s.startsWith('fashion-mnist:train:'))).toBe(true);
  }, 60_000);

  it('asks out-of-grammar questions that are none of the six forms, from every family', () => {
    const r = py<{ qs: [string, string][]; sixForms: string[] }>(`
import json, random, ood
rng = random.Random(7)
print(json.dumps({"qs": [ood.out_of_grammar_question(rng) for _ in range(3000)], "sixForms": sorted(" ".join(w) for w in ood.SIX_FORMS)}))`);
    const forms = sixForms();
    expect(new Set(r.sixForms.map(normalize))).toEqual(forms); // the generator's list is the spec's
    const valid = r.qs.filter(([, q]) => forms.has(normalize(q)));
    expect(valid).toEqual([]);
    expect(new Set(r.qs.map(([f]) => f))).toEqual(new Set(['free', 'other_shape', 'other_attribute', 'wrong_form', 'scrambled', 'foreign']));
    expect(new Set(r.qs.map(([, q]) => q)).size).toBeGreaterThan(300);
  }, 60_000);

  it('writes a folder whose scenes carry boxes that hold their rendered objects, and whose OOD lines are labelled', async () => {
    const dir = join(work, 'folder');
    const budget = py<{ ood: number; photos: number }>(`
import json, data, ood
data.write_folder(${JSON.stringify(dir)}, 'test', 40, ood_count=36)
print(json.dumps({"ood": data.FOLDER_OOD, "photos": sum(ood.folder_kind(j) == "photo" for j in range(data.FOLDER_OOD))}))`);
    expect(budget.ood).toBeGreaterThanOrEqual(500); // what npm run train's folder gets by default
    expect(budget.photos).toBeGreaterThanOrEqual(100);
    type Row = {
      id: number; domain: string; kind?: string; caption: string; images: Record<string, string>;
      scene?: { background: string };
      objects?: { phrase: string; shape: string; color: string; bbox_128: number[] }[];
      questions: { kind: string; question: string; answer: string; object?: number | null }[];
      out_of_grammar: { question: string; answer: string }[];
      continuation: { prefix: string; caption: string };
    };
    const rows = readFileSync(join(dir, 'labels.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Row);
    const scenes = rows.filter((r) => r.domain === 'in');
    const oods = rows.filter((r) => r.domain === 'ood');
    expect(scenes.map((r) => r.id)).toEqual([...Array(40).keys()]);
    expect(oods.length).toBe(36);
    expect(new Set(oods.map((r) => r.kind))).toEqual(new Set(KINDS));
    const forms = sixForms();
    const background: Record<string, number[]> = { white: [255, 255, 255], gray: [128, 128, 128], black: [0, 0, 0] };
    const rgb: Record<string, number[]> = { red: [220, 30, 30], green: [30, 170, 50], blue: [40, 70, 220], yellow: [240, 210, 30], purple: [140, 50, 170], orange: [245, 130, 20] };
    for (const r of scenes) {
      // the objects, in caption order, spell the caption, and their boxes are in that order
      const [a, b, c] = r.objects!.map((o) => o.phrase);
      const cx = r.objects!.map((o) => (o.bbox_128[0] + o.bbox_128[2]) / 2);
      const cy = r.objects!.map((o) => (o.bbox_128[1] + o.bbox_128[3]) / 2);
      if (r.objects!.length === 1) expect(r.caption).toBe(`a ${a}`);
      if (r.objects!.length === 3) {
        expect(r.caption).toBe(`a ${a}, a ${b} and a ${c}`);
        expect(cx[0] < cx[1] && cx[1] < cx[2]).toBe(true);
      }
      if (r.objects!.length === 2) {
        expect([`a ${a} to the left of a ${b}`, `a ${a} above a ${b}`]).toContain(r.caption);
        expect(r.caption.includes('to the left of') ? cx[0] < cx[1] : cy[0] < cy[1]).toBe(true);
      }
      const { data, info } = await sharp(join(dir, r.images.png128)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      expect(info.width).toBe(128);
      const bg = background[r.scene!.background];
      const px = (x: number, y: number): number[] => [0, 1, 2].map((c) => data[(y * 128 + x) * 3 + c]);
      const far = (a: number[], b: number[], d: number): boolean => a.some((v, c) => Math.abs(v - b[c]) > d);
      const inBox = (x: number, y: number, b: number[], pad: number): boolean =>
        x + 1 > b[0] - pad && x < b[2] + pad && y + 1 > b[1] - pad && y < b[3] + pad;
      // every pixel that is not background lies in some box (antialiased edges: 1 px)
      let outside = 0;
      for (let y = 0; y < 128; y++) for (let x = 0; x < 128; x++) {
        if (far(px(x, y), bg, 8) && !r.objects!.some((o) => inBox(x, y, o.bbox_128, 1))) outside++;
      }
      expect(outside, `scene ${r.id}`).toBe(0);
      // each box is filled with its object's color (a triangle fills half its box, a circle 79 %)
      for (const o of r.objects!) {
        const [x0, y0, x1, y1] = o.bbox_128;
        let hits = 0;
        for (let y = Math.ceil(y0); y < Math.floor(y1); y++) for (let x = Math.ceil(x0); x < Math.floor(x1); x++) {
          if (!far(px(x, y), rgb[o.color], 45)) hits++;
        }
        expect(hits / ((x1 - x0) * (y1 - y0)), `scene ${r.id} ${o.phrase}`).toBeGreaterThan(o.shape === 'triangle' ? 0.3 : 0.6);
        expect(x1 - x0).toBeCloseTo(y1 - y0, 1);
      }
      // a question's object is the one it asks about
      for (const q of r.questions) {
        if (q.object === null || q.object === undefined) continue;
        const o = r.objects![q.object];
        if (q.kind === 'color_of_shape') expect(o.color).toBe(q.answer);
        if (q.kind === 'shape_of_color') expect(o.shape).toBe(q.answer);
        if (q.kind === 'exists') expect(q.answer).toBe('yes');
      }
      expect(r.questions.every((q) => forms.has(normalize(q.question)))).toBe(true);
      expect(r.out_of_grammar.length).toBeGreaterThan(0);
      expect(r.out_of_grammar.every((q) => !forms.has(normalize(q.question)) && q.answer === 'unknown')).toBe(true);
    }
    for (const r of oods) {
      expect(r.caption).toBe('an image i cannot describe');
      expect(r.questions.length).toBe(3);
      expect(r.questions.every((q) => forms.has(normalize(q.question)) && q.answer === 'unknown')).toBe(true);
      expect(r.out_of_grammar.every((q) => !forms.has(normalize(q.question)) && q.answer === 'unknown')).toBe(true);
      expect(r.continuation.prefix.length).toBeGreaterThan(0);
      expect(r.continuation.caption).toBe(r.continuation.prefix); // nothing is to be added
      expect(Object.keys(r.images).sort()).toEqual(['jpeg256', 'jpeg64', 'png128']);
    }
  }, 120_000);

  it('trains OOD images to refuse: the caption, unknown answers, and a continuation that ends at once', () => {
    const r = py<{ caption: string; answers: string[]; contTargets: number; contLast: number; eos: number; oog: string[] }>(`
import json, random, ood, train, vocab
rng = random.Random(3)
rows = train.sequences(rng, ood.OODImage("noise"), 3)
dec = lambda ts: vocab.decode([t for t in ts if t != train.IGNORE])
cont_ids, cont_t = rows[-1]
scene_rows = [train.sequences(random.Random(i), train.shapes.sample_scene(random.Random(i)), 3, oog_rate=1.0) for i in range(20)]
print(json.dumps({"caption": dec(rows[0][1]), "answers": [dec(t) for _, t in rows[1:-1]],
                  "contTargets": sum(t != train.IGNORE for t in cont_t), "contLast": cont_t[-1], "eos": vocab.EOS_ID,
                  "oog": [vocab.decode(i[2:i.index(vocab.ANSWER_ID)]) + "|" + dec(t) for s in scene_rows for i, t in s[1:]]}))`);
    expect(r.caption).toBe('an image i cannot describe');
    expect(r.answers).toEqual(['unknown', 'unknown', 'unknown']);
    expect(r.contTargets).toBe(1);
    expect(r.contLast).toBe(r.eos);
    expect(r.oog.length).toBe(60);
    for (const line of r.oog) expect(line.split('|')[1], line).toBe('unknown');
  }, 60_000);

  it('has the words it needs in a tokenizer.json that @huggingface/tokenizers splits as vocab.encode does', () => {
    const r = py<{ tokenizer: Record<string, unknown>; config: Record<string, unknown>; cases: [string, number[]][] }>(`
import json, random, ood, vocab
rng = random.Random(11)
texts = [ood.OOD_CAPTION, "unknown", "What color is the STAR?", "how   many circles are there ?", "is there a red_circle?",
         "¿de qué color es el círculo?", "l'image: 3.5 stars!", "a large blue square, a small red circle and a small green triangle"]
texts += [ood.out_of_grammar_question(rng)[1] for _ in range(200)]
print(json.dumps({"tokenizer": vocab.tokenizer_json(), "config": vocab.tokenizer_config_json(64),
                  "cases": [[t, vocab.encode(t)] for t in texts]}))`);
    const tok = TextTokenizer.fromJson(r.tokenizer, r.config);
    for (const w of ['unknown', 'an', 'image', 'i', 'cannot', 'describe']) expect(tok.tokenToId(w), w).toBeDefined();
    for (const [text, ids] of r.cases) expect(Array.from(tok.encode(text)), text).toEqual(ids);
    expect(tok.decode(tok.encode('an image i cannot describe'))).toBe('an image i cannot describe');
    const unk = tok.tokenToId('<unk>');
    expect(Array.from(tok.encode('what color is the star?'))).toContain(unk);
    expect(Array.from(tok.encode('how many circles are there?')).filter((id) => id === unk).length).toBe(1); // a whole word
  }, 60_000);
});
