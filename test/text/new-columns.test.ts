// Decode steps that fetch only their new K/V columns (src/quantize/new-columns.ts) and
// append them to the past in reused arrays (KvCache.appendColumns, KvPool): the same
// logits and the same cache as fetching the presents, step after step, on shapes-base's
// decode-only graph in fp32, fp16 and q8; arrays go back to the pool on release and are
// handed out again; a released cache cannot feed a step.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionOptionsOf } from '../../src/model/load.ts';
import { exposeNewColumns } from '../../src/quantize/new-columns.ts';
import { decodeModel, encodeModel } from '../../src/quantize/onnx-proto.ts';
import { decodeStep, prefillStep } from '../../text/batch-inputs.ts';
import { DecoderRunner } from '../../text/decoder-runner.ts';
import type { KvCache } from '../../text/kv-cache.ts';
import { KvPool } from '../../text/kv-pool.ts';
import { ROOT } from '../helpers.ts';

const ONNX = join(ROOT, 'assets/models/shapes-base/onnx');
const ROWS = 5;
const PATCHES = 64;

describe('exposeNewColumns', () => {
  it("names each present's Concat input as an output, and refuses a graph whose presents are not Concat(past, new)", () => {
    const model = decodeModel(new Uint8Array(readFileSync(join(ONNX, 'decoder_with_past_model.onnx'))));
    const exposed = exposeNewColumns(model)!;
    expect([...exposed.outputs.keys()].sort()).toEqual([0, 1, 2].flatMap((i) => [`present.${i}.decoder.key`, `present.${i}.decoder.value`]));
    expect(exposed.model.graph.outputs.map((o) => o.name)).toEqual([...model.graph.outputs.map((o) => o.name), ...exposed.outputs.values()]);
    expect(exposed.model.graph.nodes).toBe(model.graph.nodes);
    const concat = model.graph.nodes.find((n) => n.outputs[0] === 'present.0.decoder.key')!;
    const broken = { ...model, graph: { ...model.graph, nodes: model.graph.nodes.map((n) => (n === concat ? { ...n, inputs: [n.inputs[1], n.inputs[0]] } : n)) } };
    expect(exposeNewColumns(broken)).toBeUndefined();
  });
});

describe('KvPool', () => {
  it('hands a given-back array out again for a request it fits, zeroed unless the caller overwrites it', () => {
    const pool = new KvPool();
    const a = pool.take(new Float32Array(0), 100);
    expect(a.length).toBe(100);
    a.fill(7);
    pool.give(a);
    expect(pool.size).toBe(1);
    const b = pool.take(new Float32Array(0), 110); // made with room to grow: 125
    expect(b.buffer).toBe(a.buffer);
    expect([...b.subarray(0, 3)]).toEqual([0, 0, 0]);
    expect(pool.take(new Uint16Array(0), 10)).toBeInstanceOf(Uint16Array); // another element type: a new array
    pool.give(b);
    expect(pool.take(new Float32Array(0), 1000).buffer).not.toBe(a.buffer); // too small: a new one
    expect(pool.take(new Float32Array(0), 10).buffer).not.toBe(a.buffer); // over 4× too big: kept for bigger requests
  });
});

for (const file of ['decoder_with_past_model.onnx', 'decoder_with_past_model_fp16.onnx', 'decoder_with_past_model_quantized.onnx']) {
  describe(`new columns against presents (${file})`, () => {
    let plain: DecoderRunner;
    let columns: DecoderRunner;
    const merged = join(ONNX, file.replace('decoder_with_past_model', 'decoder_model_merged'));

    beforeAll(async () => {
      const path = join(ONNX, file);
      const exposed = exposeNewColumns(decodeModel(new Uint8Array(readFileSync(path))))!;
      plain = await DecoderRunner.load(merged, sessionOptionsOf({ threads: 1 }), undefined, path);
      columns = await DecoderRunner.load(merged, sessionOptionsOf({ threads: 1 }), undefined, { path, bytes: encodeModel(exposed.model), columns: exposed.outputs });
    });
    afterAll(async () => {
      await Promise.all([plain?.release(), columns?.release()]);
    });

    it('gives the same logits and the same cache over 6 decode steps, and a 3-token verify step', async () => {
      expect(plain.fetchesNewColumnsOnly).toBe(false);
      expect(columns.fetchesNewColumnsOnly).toBe(true);
      const hidden = plain.layout.numHeads * plain.layout.headDim;
      const prompts = Array.from({ length: ROWS }, (_, r) => Int32Array.from({ length: 3 + r }, (_, j) => (j === 0 ? 1 : 4 + ((r * 7 + j) % 30))));
      const first = prefillStep(prompts, 0);
      const encoder = { data: Float32Array.from({ length: ROWS * PATCHES * hidden }, (_, i) => Math.sin(i) * 0.5), numPatches: PATCHES, hiddenSize: hidden };
      const placeholder = { data: new Float32Array(ROWS * hidden), numPatches: 1, hiddenSize: hidden };
      const start = await plain.step({ tokens: first.step, encoderStates: encoder, cache: plain.emptyCache(ROWS) });
      let [a, b]: KvCache[] = [start.cache, start.cache];
      let state = first.state;
      for (let t = 0; t < 6; t++) {
        const next = decodeStep(state, Int32Array.from({ length: ROWS }, (_, r) => 4 + ((t * 5 + r) % 30)));
        const [x, y] = await Promise.all([plain.step({ tokens: next.step, encoderStates: placeholder, cache: a }), columns.step({ tokens: next.step, encoderStates: placeholder, cache: b })]);
        expect(y.logits).toEqual(x.logits);
        expect(y.cache.pastLength).toBe(x.cache.pastLength);
        expect(y.cache.feeds()).toEqual(x.cache.feeds());
        if (t > 0) b.release(); // the previous pooled cache's arrays go back for the next step
        [a, b, state] = [x.cache, y.cache, next.state];
      }
      const three = { inputIds: new Int32Array(ROWS * 3).fill(6), seqLength: 3, attentionMask: new Int32Array(ROWS * (state.width + 3)).fill(1), positionIds: Int32Array.from({ length: ROWS * 3 }, (_, i) => state.nextPosition[Math.floor(i / 3)] + (i % 3)) };
      const [x, y] = await Promise.all([plain.step({ tokens: three, encoderStates: placeholder, cache: a, isAllPositions: true }), columns.step({ tokens: three, encoderStates: placeholder, cache: b, isAllPositions: true })]);
      expect(y.logits).toEqual(x.logits);
      expect(y.cache.feeds()).toEqual(x.cache.feeds());
      y.cache.release();
      expect(() => y.cache.feeds()).toThrow(/after release/);
    });
  });
}
