// Compacting value names keeps the model's interface and its outputs, and shrinks it.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { compactNames } from '../../src/quantize/compact-names.ts';
import { walkGraphs } from '../../src/quantize/graph.ts';
import { decodeModel, encodeModel } from '../../src/quantize/onnx-proto.ts';
import { FIXTURES } from '../helpers.ts';

const ENCODER = join(FIXTURES.encoderDecoder, 'onnx/encoder_model.onnx');
const DECODER = join(FIXTURES.encoderDecoder, 'onnx/decoder_model_merged.onnx'); // has If branches reading outer values

describe('compactNames', () => {
  it('keeps graph inputs and outputs, renames every inner value consistently and drops node names', async () => {
    const bytes = new Uint8Array(await readFile(DECODER));
    const model = decodeModel(bytes);
    const io = [...model.graph.inputs, ...model.graph.outputs].map((v) => v.name);
    const stats = compactNames(model);
    expect([...model.graph.inputs, ...model.graph.outputs].map((v) => v.name)).toEqual(io);
    expect(stats.renamedValues).toBeGreaterThan(100);
    const produced = new Set<string>(io);
    walkGraphs(model.graph, (g) => {
      for (const t of g.initializers) produced.add(t.name);
      for (const v of g.inputs) produced.add(v.name);
      for (const n of g.nodes) n.outputs.forEach((o) => produced.add(o));
    });
    walkGraphs(model.graph, (g) => {
      for (const n of g.nodes) {
        expect(n.name).toBe('');
        for (const name of [...n.inputs, ...n.outputs]) if (name && !io.includes(name)) expect(name).toMatch(/^v[0-9a-z]+$/);
        for (const i of n.inputs) if (i) expect(produced.has(i)).toBe(true); // every read still has a writer
      }
    });
    expect(encodeModel(model).length).toBeLessThan(bytes.length);
  });

  it('gives the same outputs in onnxruntime', async () => {
    const bytes = new Uint8Array(await readFile(ENCODER));
    const model = decodeModel(bytes);
    compactNames(model);
    const [before, after] = await Promise.all([ort.InferenceSession.create(bytes), ort.InferenceSession.create(encodeModel(model))]);
    const [n, c, h, w] = [2, 3, 64, 64];
    const pixels = Float32Array.from({ length: n * c * h * w }, (_, i) => Math.sin(i * 0.37));
    const feeds = { pixel_values: new ort.Tensor('float32', pixels, [n, c, h, w]) };
    const [a, b] = [await before.run(feeds), await after.run(feeds)];
    expect(after.outputNames).toEqual(before.outputNames);
    const name = before.outputNames[0];
    expect(Array.from(b[name].data as Float32Array)).toEqual(Array.from(a[name].data as Float32Array));
    await Promise.all([before.release(), after.release()]);
  });
});
