// What the q8 and fp16 rewrites leave in the graphs of both fixtures (If branches
// included), and how much smaller the files get.
import { basename } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { elemType } from '../../src/quantize/graph.ts';
import { DataType } from '../../src/quantize/onnx-proto.ts';
import { LARGE_CONSTANT } from '../../src/quantize/q8.ts';
import { FIXTURES } from '../helpers.ts';
import { allNodes, quantizedCopy, readModel, type QuantizedCopy } from './support.ts';

for (const [name, fixture] of Object.entries(FIXTURES)) {
  describe(`iris quantize on ${name}`, () => {
    let copy: QuantizedCopy;
    beforeAll(async () => {
      copy = await quantizedCopy(fixture);
    });
    afterAll(() => copy.remove());

    it('writes a _quantized and an _fp16 file next to every base file', () => {
      const outputs = copy.reports.map((r) => basename(r.output)).sort();
      const bases = [...new Set(copy.reports.map((r) => basename(r.source, '.onnx')))];
      expect(outputs).toEqual(bases.flatMap((b) => [`${b}_fp16.onnx`, `${b}_quantized.onnx`]).sort());
    });

    it('q8: no float MatMul reads a constant matrix any more, in any graph; int8 kernels everywhere', async () => {
      for (const r of copy.reports.filter((x) => x.dtype === 'q8')) {
        const nodes = allNodes(await readModel(r.output));
        const floatConstMatMuls = nodes.filter(({ node, scope }) => node.opType === 'MatMul' && scope.get(node.inputs[1])?.tensor.dataType === DataType.FLOAT);
        expect(floatConstMatMuls).toEqual([]);
        expect(nodes.filter(({ node }) => node.opType === 'MatMulInteger').length).toBe(r.changes.matmuls);
        const count = (op: string) => nodes.filter(({ node }) => node.opType === op).length;
        // Activations are quantized per row (ReduceMin/ReduceMax per row), never per tensor,
        // once per activation: q/k/v share one.
        expect(count('DynamicQuantizeLinear')).toBe(0);
        expect(count('ReduceMin')).toBe(count('ReduceMax'));
        expect(count('ReduceMin')).toBeGreaterThan(0);
        expect(count('ReduceMin')).toBeLessThan(count('MatMulInteger'));
        expect(nodes.some(({ node }) => node.opType === 'Gather' && node.inputs[0].endsWith('weight'))).toBe(false);
        // No float constant of LARGE_CONSTANT values or more is left anywhere.
        const large = nodes.flatMap(({ node, scope }) => node.inputs.map((i) => scope.get(i)?.tensor)).filter((t) => t?.dataType === DataType.FLOAT && t.dims.reduce((a, b) => a * b, 1) >= LARGE_CONSTANT);
        expect(large).toEqual([]);
      }
    });

    it('q8 reaches into the If branch (cross-attention K/V) where the layout has one', async () => {
      const decoder = copy.reports.find((r) => r.dtype === 'q8' && basename(r.source) === 'decoder_model_merged.onnx')!;
      const model = await readModel(decoder.output);
      const ifNode = model.graph.nodes.find((n) => n.opType === 'If');
      if (name === 'gpt2') return expect(ifNode).toBeUndefined();
      const elseOps = ifNode!.attributes.find((a) => a.name === 'else_branch')!.g!.nodes.map((n) => n.opType);
      expect(elseOps.filter((op) => op === 'MatMulInteger')).toHaveLength(4);
      expect(elseOps).not.toContain('MatMul');
    });

    it('fp16: no float32 initializer, constant, Cast target or graph input/output is left', async () => {
      for (const r of copy.reports.filter((x) => x.dtype === 'fp16')) {
        const model = await readModel(r.output);
        for (const { node } of allNodes(model)) {
          if (node.opType === 'Cast') expect(node.attributes.find((a) => a.name === 'to')?.i).not.toBe(BigInt(DataType.FLOAT));
          if (node.opType === 'Constant' || node.opType === 'ConstantOfShape') expect(node.attributes[0].t?.dataType).not.toBe(DataType.FLOAT);
        }
        expect(model.graph.initializers.filter((t) => t.dataType === DataType.FLOAT)).toEqual([]);
        const io = [...model.graph.inputs, ...model.graph.outputs].filter((v) => v.name !== 'pixel_values').map(elemType);
        expect(io).not.toContain(DataType.FLOAT);
        expect(io).toContain(DataType.FLOAT16);
      }
    });

    it('fp16: pixel_values stays float32 (what transformers.js feeds) and is cast once at entry', async () => {
      const encoder = copy.reports.find((r) => r.dtype === 'fp16' && basename(r.source) === 'encoder_model.onnx')!;
      const model = await readModel(encoder.output);
      expect(elemType(model.graph.inputs.find((v) => v.name === 'pixel_values')!)).toBe(DataType.FLOAT);
      const readers = allNodes(model).filter(({ node }) => node.inputs.includes('pixel_values'));
      expect(readers.map(({ node }) => [node.opType, node.attributes[0].i])).toEqual([['Cast', BigInt(DataType.FLOAT16)]]);
    });

    it('shrinks the files by the float payload (the graph structure stays)', () => {
      for (const r of copy.reports) {
        // Tiny models: ~50 kB of each file is graph structure (more for q8, whose per-row
        // activation quantization adds ~25 nodes per MatMul), so the ratios are far from
        // 2× and 4×; shapes-base's ratios are in the README.
        expect(r.outputBytes / r.sourceBytes).toBeLessThan(r.dtype === 'fp16' ? 0.65 : 0.75);
      }
    });
  });
}

describe('q8 with the com.microsoft kernel (DynamicQuantizeMatMul), weights only in MatMuls', () => {
  let copy: QuantizedCopy;
  beforeAll(async () => {
    copy = await quantizedCopy(FIXTURES.encoderDecoder, { kernel: 'dynamic-quantize-matmul', embeddings: false, convWeights: false, largeConstants: false });
  });
  afterAll(() => copy.remove());

  it('one DynamicQuantizeMatMul per MatMul, the bias Add fused into it; embeddings and Conv stay float', async () => {
    const decoder = copy.reports.find((r) => r.dtype === 'q8' && basename(r.source) === 'decoder_model_merged.onnx')!;
    const model = await readModel(decoder.output);
    const ops = allNodes(model).map(({ node }) => node.opType);
    const count = (op: string) => ops.filter((o) => o === op).length;
    expect(count('DynamicQuantizeMatMul')).toBe(decoder.changes.matmuls);
    expect(decoder.changes.fusedBiases).toBeGreaterThan(0);
    expect(count('MatMulInteger') + count('DequantizeLinear')).toBe(0);
    expect(decoder.changes.gathers).toBe(0);
    expect(model.opsetImports).toContainEqual({ domain: 'com.microsoft', version: 1 });
  });
});
