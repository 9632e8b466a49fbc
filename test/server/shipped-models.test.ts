// `npm start` as a user runs it: no flags, both shipped models. Each family is listed, and
// each model refuses a real photograph (a held-out test source of training/ood.py, whole,
// at its full 4K size) with the spec's caption while it still captions a scene.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { ROOT } from '../helpers.ts';

const PHOTO = '/usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg'; // in ood.py's test split: no crop of it was trained on
const MODELS = ['shapes-base', 'shapes-joint'];
const isPresent = existsSync(PHOTO) && MODELS.every((m) => existsSync(join(ROOT, 'assets/models', m, 'onnx/decoder_model_merged.onnx')));

describe.skipIf(!isPresent)('npm start on the shipped models', () => {
  it('serves both families; each refuses a photograph and captions a scene', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/server.ts'), '--port', '0', '--access-log', 'off', '--image-max-pixels', '40000000'], { cwd: ROOT });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      await vi.waitFor(() => expect(out).toMatch(/iris: models ready/), { timeout: 90_000, interval: 100 });
      const url = /iris: serving (\S+)/.exec(out)![1];
      const gql = async (query: string, variables: Record<string, unknown> = {}): Promise<Record<string, any>> => { // eslint-disable-line @typescript-eslint/no-explicit-any
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
        const body = (await res.json()) as { data?: Record<string, unknown>; errors?: unknown[] };
        expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
        return body.data!;
      };
      const { models } = await gql('{ models { id family state } }');
      expect(models).toEqual([
        { id: 'shapes-base', family: 'CROSS_ATTENTION', state: 'READY' },
        { id: 'shapes-joint', family: 'JOINT_EMBEDDING', state: 'READY' },
      ]);
      const caption = 'query($i: ImageInput!, $m: String) { caption(image: $i, model: $m) { text model } }';
      const photo = readFileSync(PHOTO).toString('base64');
      const scene = readFileSync(join(ROOT, 'assets/samples/scene-2.png')).toString('base64');
      for (const model of MODELS) {
        const refused = await gql(caption, { i: { base64: photo }, m: model });
        expect(refused.caption).toEqual({ text: 'an image i cannot describe', model });
        const described = await gql(caption, { i: { base64: scene }, m: model });
        expect(described.caption.text).toMatch(/^a (small|large) \w+ (circle|square|triangle)/);
      }
      // No model named: the first shipped model answers.
      expect((await gql(caption, { i: { base64: scene } })).caption.model).toBe('shapes-base');
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  }, 180_000);
});
