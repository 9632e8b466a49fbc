// The schema-free protobuf codec, the ONNX view on top of it, and int8 weight
// quantization, on hand-made values and on the shipped fixtures' bytes.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeModel, encodeModel } from '../../src/quantize/onnx-proto.ts';
import { ProtoWriter, Wire, decodeFields, repeatedInts } from '../../src/quantize/protobuf.ts';
import { quantizePerColumn, quantizePerRow, relativeError } from '../../src/quantize/int8.ts';
import { FIXTURES } from '../helpers.ts';

describe('protobuf wire codec', () => {
  it('round-trips varints (negative int64 included), bytes and fixed32 fields in order', () => {
    const bytes = new ProtoWriter().varint(1, 300).varint(2, -1n).string(3, 'héllo').field({ no: 4, wire: Wire.Fixed32, value: Uint8Array.of(1, 2, 3, 4) }).finish();
    const fields = decodeFields(bytes);
    expect(fields.map((f) => f.no)).toEqual([1, 2, 3, 4]);
    expect(repeatedInts([fields[0], fields[1]])).toEqual([300n, -1n]);
    expect(new TextDecoder().decode(fields[2].value as Uint8Array)).toBe('héllo');
    expect(bytes.length).toBe(2 + 1 + 10 + 1 + 1 + 6 + 1 + 4 + 1); // -1 takes ten bytes, as protobuf writes it
  });

  it('reads repeated ints packed or one per field', () => {
    const packed = decodeFields(new ProtoWriter().bytes(1, Uint8Array.of(1, 0xac, 0x02, 3)).finish());
    expect(repeatedInts(packed)).toEqual([1n, 300n, 3n]);
  });

  it('rejects truncated input instead of reading past the end', () => {
    const bytes = new ProtoWriter().string(1, 'abcdef').finish();
    expect(() => decodeFields(bytes.subarray(0, 4))).toThrow(/past the end/);
  });
});

describe('ONNX view', () => {
  it('re-encodes every fixture model to identical bytes (nothing lost, nothing reordered)', async () => {
    const files = [join(FIXTURES.encoderDecoder, 'onnx/decoder_model_merged.onnx'), join(FIXTURES.encoderDecoder, 'onnx/encoder_model.onnx'), join(FIXTURES.gpt2, 'onnx/decoder_model_merged.onnx')];
    for (const file of files) {
      const bytes = new Uint8Array(await readFile(file));
      expect(Buffer.from(encodeModel(decodeModel(bytes))).equals(Buffer.from(bytes))).toBe(true);
    }
  });

  it('sees the If node and its branch subgraphs of the encoder-decoder decoder', async () => {
    const model = decodeModel(new Uint8Array(await readFile(join(FIXTURES.encoderDecoder, 'onnx/decoder_model_merged.onnx'))));
    const ifNode = model.graph.nodes.find((n) => n.opType === 'If');
    expect(ifNode?.attributes.map((a) => a.name).sort()).toEqual(['else_branch', 'then_branch']);
    expect(ifNode?.attributes.find((a) => a.name === 'else_branch')?.g?.nodes.some((n) => n.opType === 'MatMul')).toBe(true);
  });
});

describe('int8 weights', () => {
  const w = Float32Array.from([0.5, -2, 0, 1, -0.25, 0, 0.125, 4, 0]); // [3 rows, 3 cols]

  it('per column: symmetric, zero point 0, the largest |w| of a column maps to ±127', () => {
    const q = quantizePerColumn(w, 3, 3);
    expect(Array.from(q.scales)).toEqual([1 / 127, 4 / 127, 1].map(Math.fround)); // an all-zero column gets scale 1
    expect(Array.from(q.values)).toEqual([64, -64, 0, 127, -8, 0, 16, 127, 0]);
    expect(relativeError(w, q, (i) => q.scales[i % 3])).toBeLessThan(0.5 / 127 + 1e-6);
  });

  it('per row: one scale per row (embedding rows, Conv output channels)', () => {
    const q = quantizePerRow(w, 3, 3);
    expect(Array.from(q.scales)).toEqual([2 / 127, 1 / 127, 4 / 127].map(Math.fround));
    expect(q.values[1]).toBe(-127);
    expect(relativeError(w, q, (i) => q.scales[Math.floor(i / 3)])).toBeLessThan(0.5 / 127 + 1e-6);
  });

  it('checks the shape', () => {
    expect(() => quantizePerColumn(w, 2, 3)).toThrow(RangeError);
  });
});
