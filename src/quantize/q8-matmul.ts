// The q8 MatMul kernel in standard ONNX ops, with activations quantized per row (per
// token) rather than per tensor. DynamicQuantizeLinear picks one scale and zero point
// for the whole activation, so in a batched decoder step each row's result depended on
// its batch-mates; with one scale per row of A (viewed as [rows, K]) a request decodes
// the same alone or batched.
import { intAttribute, intsAttribute, node, tensor, type NameAllocator } from './graph.ts';
import { DataType, type OnnxGraph, type OnnxNode, type OnnxTensor } from './onnx-proto.ts';

export interface Int8Matrix {
  readonly values: string; // int8 [K, N]
  readonly scales: string; // float [N]
}

export interface RowQuantized {
  readonly q: string; // uint8 [M, K]
  readonly scale: string; // float [M, 1]
  readonly zeroPoint: string; // float [M, 1], integral, in [0, 255]
  readonly leadingDims: string; // int64: A's shape without its last axis
}

/** Fresh names plus constants added once per graph (If branches get their own). */
export class KernelBuilder {
  private readonly constants = new Map<OnnxGraph, Map<string, string>>();
  constructor(readonly names: NameAllocator) {}

  constant(graph: OnnxGraph, key: string, make: (name: string) => OnnxTensor): string {
    const known = this.constants.get(graph) ?? new Map<string, string>();
    this.constants.set(graph, known);
    if (!known.has(key)) {
      const name = this.names.fresh(`q8_${key}`);
      graph.initializers.push(make(name));
      known.set(key, name);
    }
    return known.get(key)!;
  }

  float(graph: OnnxGraph, value: number): string {
    return this.constant(graph, `f${value}`, (name) => tensor(name, [], DataType.FLOAT, Float32Array.of(value)));
  }

  int64s(graph: OnnxGraph, values: number[]): string {
    return this.constant(graph, `i${values.join('_')}`, (name) => tensor(name, [values.length], DataType.INT64, BigInt64Array.from(values.map(BigInt))));
  }
}

/**
 * A → [M, K] → per-row uint8 (q, scale, zero point), as DynamicQuantizeLinear does per
 * tensor: the range always includes 0 so that 0 is exact. An all-zero row gets a tiny
 * scale instead of 0 so the Div stays finite (its values quantize to the zero point).
 */
export function quantizeRows(graph: OnnxGraph, a: string, k: number, base: string, b: KernelBuilder): { nodes: OnnxNode[]; out: RowQuantized } {
  const n = (x: string) => b.names.fresh(`${base}_A${x}`);
  const [a2, lo, hi, lo0, hi0, range, raw, scale, negLo, zpRaw, zp, scaled, rounded, shifted, clipped, q, leadingDims] =
    ['_2d', '_min', '_max', '_min0', '_max0', '_range', '_rawscale', '_scale', '_neg', '_zpraw', '_zp', '_div', '_round', '_shift', '_clip', '_q', '_lead'].map(n);
  const zero = b.float(graph, 0);
  const reduce = { attributes: [intsAttribute('axes', [1]), intAttribute('keepdims', 1)] };
  const nodes = [
    node('Shape', [a], [leadingDims], n('_Shape'), { attributes: [intAttribute('start', 0), intAttribute('end', -1)] }),
    node('Reshape', [a, b.int64s(graph, [-1, k])], [a2], n('_Reshape')),
    node('ReduceMin', [a2], [lo], n('_ReduceMin'), reduce),
    node('ReduceMax', [a2], [hi], n('_ReduceMax'), reduce),
    node('Min', [lo, zero], [lo0], n('_Min')),
    node('Max', [hi, zero], [hi0], n('_Max')),
    node('Sub', [hi0, lo0], [range], n('_Sub')),
    node('Div', [range, b.float(graph, 255)], [raw], n('_DivRange')),
    node('Max', [raw, b.float(graph, 1e-30)], [scale], n('_MaxScale')),
    node('Neg', [lo0], [negLo], n('_Neg')),
    node('Div', [negLo, scale], [zpRaw], n('_DivZp')),
    node('Round', [zpRaw], [zp], n('_RoundZp')),
    node('Div', [a2, scale], [scaled], n('_Div')),
    node('Round', [scaled], [rounded], n('_Round')),
    node('Add', [rounded, zp], [shifted], n('_Add')),
    node('Clip', [shifted, zero, b.float(graph, 255)], [clipped], n('_Clip')),
    node('Cast', [clipped], [q], n('_Cast'), { attributes: [intAttribute('to', DataType.UINT8)] }),
  ];
  return { nodes, out: { q, scale, zeroPoint: zp, leadingDims } };
}

/**
 * Y = (q·B − zp ⊗ colsum(B)) · (row scale ⊗ column scale), reshaped back to A's leading
 * axes. onnxruntime's CPU MatMulInteger takes only a scalar a_zero_point, so the per-row
 * zero point is subtracted afterwards through B's column sums (exact integers, ≤ 2^24
 * for K up to 512; beyond that the float product rounds, identically alone or batched).
 */
export function matMulRows(graph: OnnxGraph, a: RowQuantized, w: Int8Matrix, colSums: string, numCols: number, output: string, base: string, b: KernelBuilder): OnnxNode[] {
  const n = (x: string) => b.names.fresh(`${base}${x}`);
  const [yInt, yFloat, offset, centred, scale, y2, shape] = ['_i32', '_f32', '_zpoffset', '_centred', '_yscale', '_2d', '_shape'].map(n);
  return [
    node('MatMulInteger', [a.q, w.values], [yInt], n('_MatMulInteger')),
    node('Cast', [yInt], [yFloat], n('_Cast'), { attributes: [intAttribute('to', DataType.FLOAT)] }),
    node('Mul', [a.zeroPoint, colSums], [offset], n('_zpMul')),
    node('Sub', [yFloat, offset], [centred], n('_zpSub')),
    node('Mul', [a.scale, w.scales], [scale], n('_scales')),
    node('Mul', [centred, scale], [y2], n('_rescale')),
    node('Concat', [a.leadingDims, b.int64s(graph, [numCols])], [shape], n('_outShape'), { attributes: [intAttribute('axis', 0)] }),
    node('Reshape', [y2, shape], [output], n('_Reshape')),
  ];
}

/** Column sums of an int8 [K, N] matrix, as float [N] (for the zero-point correction). */
export function columnSums(values: Int8Array, rows: number, cols: number): Float32Array {
  const sums = new Float32Array(cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) sums[c] += values[r * cols + c];
  return sums;
}
