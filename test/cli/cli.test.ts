// The `iris` command run as a subprocess, the way users and scripts run it.
import { existsSync } from 'node:fs';
import { cp, mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EvalReport } from '../../src/cli/eval-report.ts';
import { FIXTURES, syntheticImage, writeHeldOut } from '../helpers.ts';
import { iris } from './support.ts';

describe('iris CLI', () => {
  let dir: string;
  let images: string[];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'iris-cli-'));
    images = await Promise.all([1, 2].map(async (seed) => {
      const path = join(dir, `scene${seed}.png`);
      await writeFile(path, await syntheticImage(128, 128, seed));
      return path;
    }));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('captions several images, one line each, and emits JSON results with --json', async () => {
    const plain = await iris(['caption', ...images, '--model', FIXTURES.encoderDecoder, '--max-new-tokens', '4']);
    expect(plain.code).toBe(0);
    const lines = plain.stdout.trim().split('\n');
    expect(lines.map((l) => l.split('\t')[0])).toEqual(images);
    const json = await iris(['caption', images[0], '--model', FIXTURES.encoderDecoder, '--max-new-tokens', '4', '--json']);
    const result = JSON.parse(json.stdout) as { text: string; tokens: unknown[]; finishReason: string };
    expect(result.tokens).toHaveLength(4);
    expect(result.finishReason).toMatch(/^(EOS|LENGTH)$/);
    expect(lines[0].split('\t')[1]).toBe(result.text);
  });

  it('warns on stderr about words the vocabulary lacks; --json carries the warnings and the confidence', async () => {
    const args = ['ask', images[0], 'what is in this photo?', '--model', FIXTURES.encoderDecoder, '--max-new-tokens', '3'];
    const plain = await iris(args);
    expect(plain.code).toBe(0);
    expect(plain.stdout.trim().split('\n')).toHaveLength(1);
    expect(plain.stderr).toContain(`${images[0]}: warning [UNKNOWN_WORDS]: 3 words of the question not in the model's vocabulary, read as <unk>: "in", "this", "photo"`);
    const json = await iris([...args, '--json']);
    const result = JSON.parse(json.stdout) as { text: string; tokens: { logprob?: number }[]; warnings: unknown[]; confidence: Record<string, number | null> };
    expect(result.warnings).toEqual([{ code: 'UNKNOWN_WORDS', message: expect.stringContaining('"photo"'), words: ['in', 'this', 'photo'] }]);
    expect(result.confidence.tokens).toBe(result.tokens.length);
    expect(result.tokens.every((t) => t.logprob === undefined)).toBe(true);
    if (result.tokens.length > 0) for (const key of ['meanLogprob', 'minLogprob', 'perplexity']) expect(Number.isFinite(result.confidence[key])).toBe(true);
    const known = await iris(['ask', images[0], 'how many shapes are there?', '--model', FIXTURES.encoderDecoder, '--max-new-tokens', '3']);
    expect(known.stderr).not.toContain('warning');
  });

  it('reports invalid options and bad images with their codes and a failing exit status', async () => {
    const bad = await iris(['ask', images[0], 'how many shapes are there?', '--model', FIXTURES.gpt2, '--top-p', '3']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/INVALID_OPTIONS.*topP must be a number greater than 0 and at most 1/);
    const missing = await iris(['caption', join(dir, 'nope.png'), '--model', FIXTURES.gpt2]);
    expect(missing.stderr).toMatch(/IMAGE_FETCH_FAILED/);
    const usage = await iris(['frobnicate', '--model', FIXTURES.gpt2]);
    expect(usage.code).toBe(2);
  });

  it('batch: one JSON line out per line in, in order; bad lines get an error line and the rest still run', async () => {
    const lines = [
      JSON.stringify({ id: 'a', task: 'caption', image: images[0], options: { maxNewTokens: 3 } }),
      'this is not json',
      JSON.stringify({ id: 'b', task: 'answer', image: images[1], question: 'how many shapes are there?', options: { maxNewTokens: 2 } }),
      JSON.stringify({ id: 'c', task: 'caption', image: images[0], options: { temperature: -1 } }),
      JSON.stringify({ id: 'd', task: 'generate', image: join(dir, 'missing.png'), prompt: 'a' }),
      JSON.stringify({ id: 'e', task: 'generate', image: images[1], prompt: 'a small', options: { maxNewTokens: 2 } }),
    ];
    const out = await iris(['batch', '--model', FIXTURES.encoderDecoder], lines.join('\n') + '\n');
    expect(out.code).toBe(1);
    const rows = out.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: unknown; text?: string; tokens?: unknown[]; finishReason?: string; timings?: object; error?: { code: string } });
    expect(rows.map((r) => r.id)).toEqual(['a', null, 'b', 'c', 'd', 'e']);
    expect(rows.map((r) => r.error?.code ?? 'ok')).toEqual(['ok', 'INVALID_OPTIONS', 'ok', 'INVALID_OPTIONS', 'IMAGE_FETCH_FAILED', 'ok']);
    for (const r of [rows[0], rows[2], rows[5]]) {
      expect(typeof r.text).toBe('string');
      expect(r.finishReason).toMatch(/^(EOS|LENGTH)$/); // as GraphQL spells it
      expect(r.timings).toHaveProperty('totalMs');
    }
    expect(rows[0].tokens).toHaveLength(3);
    expect(rows[0]).toMatchObject({ warnings: [], confidence: { tokens: 3 } });
  });

  it('eval: prints the quality table, writes eval.json and fills the model card markers', async () => {
    const model = join(dir, 'model');
    await cp(FIXTURES.encoderDecoder, model, { recursive: true });
    await writeFile(join(model, 'README.md'), '# card\n<!-- eval:start -->\nstale\n<!-- eval:end -->\ntail\n');
    const set = join(dir, 'evalset');
    await mkdir(join(set, 'images/png128'), { recursive: true });
    await writeFile(join(set, 'images/png128/0.png'), await syntheticImage(128, 128, 3));
    const label = {
      id: 0, images: { png128: 'images/png128/0.png' }, caption: 'a large red square',
      questions: [{ kind: 'count', question: 'how many shapes are there?', answer: 'one' }],
      continuation: { prefix: 'a large', caption: 'a large red square' },
    };
    await writeFile(join(set, 'labels.jsonl'), JSON.stringify(label) + '\n');
    // Without --update-model the tracked model folder is left alone; --out writes the report where asked.
    const plain = await iris(['eval', set, '--model', model, '--out', join(dir, 'report.json')]);
    expect(plain.code).toBe(0);
    expect(existsSync(join(model, 'eval.json'))).toBe(false);
    expect(JSON.parse(await readFile(join(dir, 'report.json'), 'utf8'))).toMatchObject({ folder: set, variants: { png128: { scenes: 1 } } });
    const out = await iris(['eval', set, '--model', model, '--update-model']);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/\| variant \| scenes \| caption % \| answer % \| count % \| continuation % \|/);
    const report = JSON.parse(await readFile(join(model, 'eval.json'), 'utf8')) as { variants: Record<string, { scenes: number; questions: number }> };
    expect(report.variants.png128).toMatchObject({ scenes: 1, questions: 1 });
    const card = await readFile(join(model, 'README.md'), 'utf8');
    expect(card).toMatch(/<!-- eval:start -->\n\| variant[\s\S]*<!-- eval:end -->\ntail\n$/);
    expect(card).not.toMatch(/stale/);
  });
  it('eval on a folder with out-of-domain lines: the scenes table from the scenes only, an out-of-domain table per variant, both in --json and the card', async () => {
    const model = join(dir, 'model-ood');
    await cp(FIXTURES.encoderDecoder, model, { recursive: true });
    await writeFile(join(model, 'README.md'), '# card\n<!-- eval:start -->\nstale\n<!-- eval:end -->\n');
    const set = join(dir, 'evalset-ood');
    writeHeldOut(set, 3, 12); // 12 OOD lines: 4 photographs and one of each other kind (training/ood.py FOLDER_SCHEDULE)
    const out = await iris(['eval', set, '--model', model, '--max-new-tokens', '4', '--update-model']);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/^\| png128 \| 3 \|/m); // 3 scenes: the OOD lines are not scenes
    expect(out.stdout).toMatch(/^spec quality bars: /m);
    for (const variant of ['png128', 'jpeg64', 'jpeg256']) {
      expect(out.stdout).toContain(`out of domain, ${variant}: 12 images (4 photographs), 36 questions about them; 3 scenes, 6 out-of-grammar questions about them`);
    }
    const rows = (name: string): string[] => out.stdout.split('\n').filter((l) => l.startsWith(`| ${name} |`));
    for (const kind of ['text', 'noise', 'gradient', 'empty', 'many_objects', 'overlapping', 'other_shapes', 'background']) {
      expect(rows(kind)).toHaveLength(3);
      expect(rows(kind)[0]).toMatch(new RegExp(`^\\| ${kind} \\| 1 \\| \\d+\\.\\d\\d \\| \\d+\\.\\d\\d \\| \\d+\\.\\d\\d \\| \\d+\\.\\d\\d \\|$`));
    }
    expect(rows('photo')[0]).toMatch(/^\| photo \| 4 \|/);
    expect(rows('all out of domain')[0]).toMatch(/^\| all out of domain \| 12 \|/);
    expect(rows('scenes (out-of-grammar questions)')[0]).toMatch(/^\| scenes \(out-of-grammar questions\) \| 3 \| - \| - \| \d+\.\d\d \| - \|$/);
    expect(out.stdout).toMatch(/^spec out-of-domain bars: NOT met \(12 OOD images < 500; 4 photographs < 100/m);

    const json = await iris(['eval', set, '--model', model, '--max-new-tokens', '4', '--json', '--update-model']);
    const report = JSON.parse(json.stdout) as EvalReport;
    expect(Object.keys(report.ood!)).toEqual(['png128', 'jpeg64', 'jpeg256']);
    const png = report.ood!.png128;
    expect(png).toMatchObject({ images: 12, photos: 4, questions: 36, scenes: 3, scenes_out_of_grammar_questions: 6, meets_spec: false });
    expect(Object.keys(png.by_kind)).toEqual(['photo', 'text', 'noise', 'gradient', 'empty', 'many_objects', 'overlapping', 'other_shapes', 'background']);
    expect(Object.values(png.by_kind).map((k) => k.images)).toEqual([4, 1, 1, 1, 1, 1, 1, 1, 1]);
    for (const key of ['caption', 'answer', 'out_of_grammar', 'continuation', 'scenes_out_of_grammar', 'scenes_refused'] as const) {
      expect(png[key]).toBeGreaterThanOrEqual(0);
      expect(png[key]).toBeLessThanOrEqual(100);
    }
    expect(report.variants.png128).toMatchObject({ scenes: 3 });
    expect(report.meetsSpec).toEqual({ inDomain: false, outOfDomain: false });
    expect(JSON.parse(await readFile(join(model, 'eval.json'), 'utf8'))).toMatchObject({ ood: { png128: { images: 12 } } });
    const card = await readFile(join(model, 'README.md'), 'utf8');
    expect(card).toMatch(/<!-- eval:start -->\n\| variant[\s\S]*spec quality bars[\s\S]*out of domain, png128[\s\S]*\| all out of domain \| 12 \|[\s\S]*spec out-of-domain bars: NOT met[^\n]*\n<!-- eval:end -->\n$/);
  });

  it('--speculative ngram|draft gives the plain greedy text; junk is INVALID_OPTIONS, draft without a draft model MODEL_NOT_FOUND', async () => {
    const args = ['caption', ...images, '--model', FIXTURES.encoderDecoder, '--max-new-tokens', '12'];
    const plain = await iris(args);
    const ngram = await iris([...args, '--speculative', 'ngram', '--json']);
    expect(ngram.code).toBe(0);
    const results = ngram.stdout.trim().split('\n').map((l) => JSON.parse(l) as { text: string; timings: { draftedTokens: number } });
    expect(results.map((r) => r.text)).toEqual(plain.stdout.trim().split('\n').map((l) => l.split('\t')[1]));
    expect(results.every((r) => typeof r.timings.draftedTokens === 'number')).toBe(true);
    const junk = await iris([...args, '--speculative', 'sometimes']);
    expect(junk.code).toBe(1);
    expect(junk.stderr).toMatch(/INVALID_OPTIONS.*speculative must be one of off, draft, ngram/);
    const noDraft = await iris([...args, '--speculative', 'draft']);
    expect(noDraft.code).toBe(1);
    expect(noDraft.stderr).toMatch(/MODEL_NOT_FOUND.*draft model/);
  });
});
