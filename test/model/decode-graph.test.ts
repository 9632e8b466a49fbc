// The decode-only graph (onnx/decoder_with_past_model*.onnx): the merged decoder's cached
// branch alone. A runner with it must give the merged graph's logits at every step with
// a past (decode steps of left-padded rows with different pasts, multi-token verify
// steps), for the shipped model, its draft and its q8/fp16 variants, and for the
// fixture's graph derived by the exporter's surgery and by iris quantize's; a folder
// without it runs the merged graph; a file that does not match the merged decoder is refused.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeOnlyFileOf, onnxFiles } from '../../src/model/files.ts';
import { loadIrisModel } from '../../src/model/load.ts';
import { decodeOnlyModel } from '../../src/quantize/decode-graph.ts';
import { decodeModel, type OnnxModel } from '../../src/quantize/onnx-proto.ts';
import { addDecodeGraphs } from '../../src/quantize/quantize-folder.ts';
import { decodeStep, prefillStep } from '../../text/batch-inputs.ts';
import { DecoderRunner, type EncoderStates } from '../../text/decoder-runner.ts';
import { argmax } from '../../text/sampling/processors.ts';
import { verifyStep } from '../../text/speculative/verify-inputs.ts';
import { FIXTURES, LLAVA_FIXTURE, ROOT, SHIPPED_DRAFT, SHIPPED_MODEL, isShippedModelPresent } from '../helpers.ts';

const OPTIONS = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' } as const;

/** The fixture with a decode-only graph made by training/export.py's surgery. */
const scratch = mkdtempSync(join(tmpdir(), 'iris-decode-graph-'));
const DERIVED = join(scratch, 'tiny-random');
cpSync(FIXTURES.encoderDecoder, DERIVED, { recursive: true });
execFileSync('/usr/bin/python3', ['-c', `import export; export.write_decode_graph(${JSON.stringify(join(DERIVED, 'onnx/decoder_model_merged.onnx'))}, ${JSON.stringify(join(DERIVED, 'onnx/decoder_with_past_model.onnx'))})`],
  { cwd: join(ROOT, 'training'), stdio: 'ignore', timeout: 120_000 });
/** The same, made by iris quantize's TypeScript surgery (a folder exported without it). */
const DERIVED_TS = join(scratch, 'tiny-random-ts');
cpSync(FIXTURES.encoderDecoder, DERIVED_TS, { recursive: true });
const written = await addDecodeGraphs(DERIVED_TS);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}

/** Argmax of each [vocab] row. */
function picks(logits: Float32Array, vocab: number): number[] {
  return Array.from({ length: logits.length / vocab }, (_, r) => argmax(logits.subarray(r * vocab, (r + 1) * vocab)));
}

/**
 * Prefill three rows of different prompt lengths on the merged graph, then decode steps
 * and a verify step with both runners from the same caches: logits equal within `tolerance`.
 */
async function compare(merged: DecoderRunner, withPast: DecoderRunner, numPatches: number, hiddenSize: number, tolerance: number): Promise<void> {
  const prompts = [[1, 5, 6, 7, 8, 9], [1, 6], [1, 7, 9, 11]].map((p) => Int32Array.from(p));
  const states: EncoderStates = { data: new Float32Array(prompts.length * numPatches * hiddenSize).map((_, i) => Math.sin(i * 0.37) * 0.5), numPatches, hiddenSize };
  const first = prefillStep(prompts, 0);
  let out = await merged.step({ tokens: first.step, encoderStates: states, cache: merged.emptyCache(prompts.length) });
  let state = first.state;
  const placeholder: EncoderStates = { data: new Float32Array(prompts.length * hiddenSize), numPatches: 1, hiddenSize };
  for (let s = 0; s < 4; s++) {
    const next = decodeStep(state, Int32Array.from(picks(out.logits, out.vocabSize)));
    const input = { tokens: next.step, encoderStates: placeholder, cache: out.cache };
    const [a, b] = [await merged.step(input), await withPast.step(input)];
    expect(maxAbsDiff(a.logits, b.logits)).toBeLessThanOrEqual(tolerance);
    expect(picks(b.logits, b.vocabSize)).toEqual(picks(a.logits, a.vocabSize));
    expect(b.cache.pastLength).toBe(a.cache.pastLength);
    out = b; // continue from the decode-only graph's own cache
    state = next.state;
  }
  const rows = [{ tokenId: 5, draftIds: Int32Array.from([6, 7]) }, { tokenId: 8, draftIds: new Int32Array(0) }, { tokenId: 9, draftIds: Int32Array.from([10]) }];
  const verify = verifyStep(state, rows, 0);
  const input = { tokens: verify.step, encoderStates: placeholder, cache: out.cache, isAllPositions: true };
  const [a, b] = [await merged.step(input), await withPast.step(input)];
  expect(maxAbsDiff(a.logits, b.logits)).toBeLessThanOrEqual(tolerance);
}

const cases: [string, string, string, number][] = [
  ['tiny-random, derived by the exporter', DERIVED, 'decoder_model_merged.onnx', 1e-5],
  ['tiny-random, derived by iris quantize', DERIVED_TS, 'decoder_model_merged.onnx', 1e-5],
];
if (isShippedModelPresent) {
  cases.push(['shapes-base', SHIPPED_MODEL, onnxFiles('fp32').decoderFile, 1e-5]);
  cases.push(['shapes-base q8', SHIPPED_MODEL, onnxFiles('q8').decoderFile, 1e-5]);
  cases.push(['shapes-base fp16', SHIPPED_MODEL, onnxFiles('fp16').decoderFile, 1e-2]);
  cases.push(['shapes-base draft', SHIPPED_DRAFT, 'decoder_model_merged.onnx', 1e-5]);
}

describe('decode-only decoder graph', () => {
  for (const [name, dir, file, tolerance] of cases) {
    it(`${name}: the same logits as the merged graph at every step with a past`, async () => {
      const withPastPath = join(dir, 'onnx', decodeOnlyFileOf(file)!);
      expect(existsSync(withPastPath)).toBe(true);
      const [merged, withPast] = await Promise.all([DecoderRunner.load(join(dir, 'onnx', file), OPTIONS), DecoderRunner.load(join(dir, 'onnx', file), OPTIONS, undefined, withPastPath)]);
      try {
        expect([merged.hasDecodeGraph, withPast.hasDecodeGraph]).toEqual([false, true]);
        const { numHeads, headDim } = merged.layout;
        await compare(merged, withPast, 64, numHeads * headDim, tolerance);
      } finally {
        await Promise.all([merged.release(), withPast.release()]);
      }
    }, 60_000);
  }

  it('iris quantize makes the graph the exporter makes, and only where it is missing and possible', async () => {
    expect(written).toEqual([join(DERIVED_TS, 'onnx/decoder_with_past_model.onnx')]);
    const summary = (m: OnnxModel): unknown => ({
      inputs: m.graph.inputs.map((v) => v.name),
      outputs: m.graph.outputs.map((v) => v.name),
      ops: m.graph.nodes.map((n) => n.opType).sort(),
      reshapeTargets: m.graph.nodes.filter((n) => n.opType === 'Reshape').map((n) => m.graph.initializers.some((t) => t.name === n.inputs[1])),
    });
    const read = (path: string): OnnxModel => decodeModel(new Uint8Array(readFileSync(path)));
    expect(summary(read(join(DERIVED_TS, 'onnx/decoder_with_past_model.onnx')))).toEqual(summary(read(join(DERIVED, 'onnx/decoder_with_past_model.onnx'))));
    if (isShippedModelPresent) {
      const fromMerged = decodeOnlyModel(read(join(SHIPPED_MODEL, 'onnx/decoder_model_merged.onnx')))!;
      expect(summary(fromMerged)).toEqual(summary(read(join(SHIPPED_MODEL, 'onnx/decoder_with_past_model.onnx'))));
    }
    expect(await addDecodeGraphs(DERIVED_TS)).toEqual([]); // already there
    expect(decodeOnlyModel(read(join(FIXTURES.gpt2, 'onnx/decoder_model_merged.onnx')))).toBeUndefined(); // no If to resolve
  });

  it('is found beside the merged file with the same dtype suffix', () => {
    expect(decodeOnlyFileOf('decoder_model_merged.onnx')).toBe('decoder_with_past_model.onnx');
    expect(decodeOnlyFileOf('decoder_model_merged_quantized.onnx')).toBe('decoder_with_past_model_quantized.onnx');
    expect(decodeOnlyFileOf('decoder_model_merged_fp16.onnx')).toBe('decoder_with_past_model_fp16.onnx');
    expect(decodeOnlyFileOf('my_decoder.onnx')).toBeUndefined();
  });

  it('is used when the folder has it, and folders without it decode with the merged graph', async () => {
    const folders: [string, boolean][] = [[DERIVED, true], [FIXTURES.encoderDecoder, false], [FIXTURES.gpt2, false], [LLAVA_FIXTURE, false], ...(isShippedModelPresent ? [[SHIPPED_MODEL, true] as [string, boolean]] : [])];
    for (const [dir, expected] of folders) {
      const model = await loadIrisModel(dir, { threads: 1 });
      try {
        expect(model.runner.hasDecodeGraph, dir).toBe(expected);
        expect(model.attentionRunner?.hasDecodeGraph ?? false).toBe(false);
      } finally {
        await model.release();
      }
    }
  }, 60_000);

  it.runIf(isShippedModelPresent)('refuses a decode-only graph whose cache does not match the merged decoder', async () => {
    const load = DecoderRunner.load(join(SHIPPED_MODEL, 'onnx/decoder_model_merged.onnx'), OPTIONS, undefined, join(SHIPPED_DRAFT, 'onnx/decoder_with_past_model.onnx'));
    await expect(load).rejects.toThrow(/numLayers/);
    const merged = DecoderRunner.load(join(SHIPPED_MODEL, 'onnx/decoder_model_merged.onnx'), OPTIONS, undefined, join(SHIPPED_MODEL, 'onnx/decoder_model_merged.onnx'));
    await expect(merged).rejects.toThrow(/use_cache_branch/);
  });
});
