// The q8 rewrite (dynamic quantization, the `_quantized.onnx` variant): every MatMul whose
// B is a constant float matrix becomes an int8 × uint8 integer matrix multiply whose
// activations are quantized at run time, in the main graph and inside If/Loop bodies.
// Optionally embedding tables (Gather), Conv kernels and other large float constants are
// stored as int8 too; those are dequantized before use, for file size rather than speed.
import { countReaders, dropUnread, intAttribute, node, NameAllocator, floatValues, tensor, usedNames, walkGraphs, type Scope, type ScopedTensor } from './graph.ts';
import { quantizePerColumn, quantizePerRow } from './int8.ts';
import { DataType, type OnnxGraph, type OnnxModel, type OnnxNode, type OnnxTensor } from './onnx-proto.ts';

/**
 * 'dynamic-quantize-matmul': one com.microsoft DynamicQuantizeMatMul node per MatMul, bias fused.
 * 'matmul-integer': standard ONNX DynamicQuantizeLinear + MatMulInteger + Cast + Mul (what
 * onnxruntime's Python quantizer writes; ORT fuses it into MatMulIntegerToFloat).
 */
export type MatMulKernel = 'dynamic-quantize-matmul' | 'matmul-integer';

export interface Q8Options {
  readonly kernel: MatMulKernel;
  /** Store Gather tables (token/position embeddings) as int8 with a scale per row. */
  readonly embeddings: boolean;
  /** Store Conv kernels as int8 with a scale per output channel (DequantizeLinear before Conv). */
  readonly convWeights: boolean;
  /** Store any other float constant of at least LARGE_CONSTANT values (e.g. a learned position table) as int8 with one scale. */
  readonly largeConstants: boolean;
}

export const LARGE_CONSTANT = 4096;

/**
 * The kernels run equally fast one row at a time on shapes-base; with 32 rows
 * matmul-integer was ~10 % faster (q/k/v share one activation quantization). It is also
 * plain ONNX, the form onnxruntime's quantizer (and so transformers.js's q8 files) uses.
 */
export const DEFAULT_Q8: Q8Options = Object.freeze({ kernel: 'matmul-integer', embeddings: true, convWeights: true, largeConstants: true });

export interface Q8Stats {
  matmuls: number;
  fusedBiases: number;
  gathers: number;
  convs: number;
  constants: number;
}

/** A tied table (embedding Gather and LM-head MatMul) needs both a per-row and a per-column copy. */
type Layout = 'column' | 'row' | 'tensor';

interface Q8Context {
  readonly options: Q8Options;
  readonly names: NameAllocator;
  readonly readers: ReadonlyMap<string, number>;
  /** Each float weight is quantized once, however many nodes read it. */
  readonly done: Map<OnnxTensor, Map<Layout, { values: string; scales: string }>>;
  readonly stats: Q8Stats;
}

export function quantizeModelQ8(model: OnnxModel, options: Q8Options = DEFAULT_Q8): Q8Stats {
  const stats: Q8Stats = { matmuls: 0, fusedBiases: 0, gathers: 0, convs: 0, constants: 0 };
  const ctx: Q8Context = { options, names: new NameAllocator(usedNames(model.graph)), readers: countReaders(model.graph), done: new Map(), stats };
  walkGraphs(model.graph, (graph, scope) => rewriteGraph(graph, scope, ctx));
  dropUnread(model.graph);
  if (options.kernel === 'dynamic-quantize-matmul' && !model.opsetImports.some((o) => o.domain === 'com.microsoft')) {
    model.opsetImports.push({ domain: 'com.microsoft', version: 1 });
  }
  return stats;
}

function rewriteGraph(graph: OnnxGraph, scope: Scope, ctx: Q8Context): void {
  const out: OnnxNode[] = [];
  const fused = new Set<OnnxNode>();
  const quantizedInputs = new Map<string, string[]>(); // activation → [q, scale, zero point]
  const dequantized = new Map<string, string>(); // large constant → its float copy in this graph
  for (const n of graph.nodes) {
    if (fused.has(n)) continue;
    if (n.domain !== '') out.push(n);
    else if (n.opType === 'MatMul' && constantMatrix(scope, n.inputs[1])) out.push(...rewriteMatMul(n, graph, scope, ctx, fused, quantizedInputs));
    else if (n.opType === 'Gather' && ctx.options.embeddings && isEmbeddingGather(n, scope)) out.push(...rewriteGather(n, scope.get(n.inputs[0])!, ctx));
    else if (n.opType === 'Conv' && ctx.options.convWeights && isConstantFloat(scope.get(n.inputs[1]), 3)) out.push(...rewriteConv(n, scope.get(n.inputs[1])!, ctx));
    else if (ctx.options.largeConstants) out.push(...dequantizeLargeInputs(n, scope, ctx, dequantized));
    else out.push(n);
  }
  graph.nodes = out;
}

function isConstantFloat(w: ScopedTensor | undefined, minRank: number): w is ScopedTensor {
  return w !== undefined && w.tensor.dataType === DataType.FLOAT && w.tensor.dims.length >= minRank;
}

function constantMatrix(scope: Scope, name: string): ScopedTensor | undefined {
  const w = scope.get(name);
  return isConstantFloat(w, 2) && w.tensor.dims.length === 2 ? w : undefined;
}

function isEmbeddingGather(n: OnnxNode, scope: Scope): boolean {
  const axis = n.attributes.find((a) => a.name === 'axis')?.i ?? 0n;
  return axis === 0n && constantMatrix(scope, n.inputs[0]) !== undefined;
}

/** Add the int8 copy of a float weight next to the original (same owner graph), once. */
function int8Weight(w: ScopedTensor, ctx: Q8Context, layout: Layout, scaleDims: (n: number) => number[]): { values: string; scales: string } {
  const cached = ctx.done.get(w.tensor)?.get(layout);
  if (cached) return cached;
  const size = w.tensor.dims.reduce((a, b) => a * b, 1);
  const rows = layout === 'tensor' ? 1 : w.tensor.dims[0];
  const cols = size / rows;
  const q = layout === 'column' ? quantizePerColumn(floatValues(w.tensor), rows, cols) : quantizePerRow(floatValues(w.tensor), rows, cols);
  const names = { values: ctx.names.fresh(`${w.tensor.name}_quantized`), scales: ctx.names.fresh(`${w.tensor.name}_scale`) };
  w.owner.initializers.push(
    tensor(names.values, w.tensor.dims, DataType.INT8, q.values),
    tensor(names.scales, scaleDims(q.scales.length), DataType.FLOAT, q.scales),
  );
  ctx.done.set(w.tensor, (ctx.done.get(w.tensor) ?? new Map()).set(layout, names));
  return names;
}

/** The single Add of a constant [N] vector that reads the MatMul's output, if any. */
function biasAdd(graph: OnnxGraph, scope: Scope, output: string, numCols: number, ctx: Q8Context): { add: OnnxNode; bias: string } | undefined {
  if (ctx.readers.get(output) !== 1) return undefined;
  const add = graph.nodes.find((m) => m.opType === 'Add' && m.domain === '' && m.inputs.includes(output));
  const bias = add?.inputs.find((i) => i !== output);
  const t = bias === undefined ? undefined : scope.get(bias)?.tensor;
  if (!add || !bias || !t || t.dataType !== DataType.FLOAT || t.dims.length !== 1 || t.dims[0] !== numCols) return undefined;
  return { add, bias };
}

function rewriteMatMul(n: OnnxNode, graph: OnnxGraph, scope: Scope, ctx: Q8Context, fused: Set<OnnxNode>, quantizedInputs: Map<string, string[]>): OnnxNode[] {
  const w = constantMatrix(scope, n.inputs[1])!;
  const weight = int8Weight(w, ctx, 'column', (len) => [len]);
  ctx.stats.matmuls++;
  if (ctx.options.kernel === 'dynamic-quantize-matmul') {
    const bias = biasAdd(graph, scope, n.outputs[0], w.tensor.dims[1], ctx);
    if (bias) {
      fused.add(bias.add);
      ctx.stats.fusedBiases++;
    }
    const inputs = [n.inputs[0], weight.values, weight.scales, ...(bias ? ['', bias.bias] : [])];
    return [node('DynamicQuantizeMatMul', inputs, bias ? bias.add.outputs : n.outputs, ctx.names.fresh(`${n.name || 'MatMul'}_quant`), { domain: 'com.microsoft' })];
  }
  return matMulIntegerNodes(n, w.tensor.name, weight, ctx, quantizedInputs);
}

/**
 * DynamicQuantizeLinear(A) (once per activation: q, k and v projections share it) →
 * MatMulInteger → Cast → × (a_scale · w_scale). New names start from the weight's name,
 * which is short, rather than the activation's, which carries the whole module path.
 */
function matMulIntegerNodes(n: OnnxNode, base: string, weight: { values: string; scales: string }, ctx: Q8Context, quantizedInputs: Map<string, string[]>): OnnxNode[] {
  const nodes: OnnxNode[] = [];
  const [a] = n.inputs;
  let aq = quantizedInputs.get(a);
  if (!aq) {
    aq = ['_q', '_scale', '_zp'].map((x) => ctx.names.fresh(`${base}_A${x}`));
    quantizedInputs.set(a, aq);
    nodes.push(node('DynamicQuantizeLinear', [a], aq, ctx.names.fresh(`${base}_A_quantize`)));
  }
  const [yInt, yFloat, scale] = ['_i32', '_f32', '_yscale'].map((x) => ctx.names.fresh(`${base}${x}`));
  nodes.push(
    node('MatMulInteger', [aq[0], weight.values, aq[2]], [yInt], ctx.names.fresh(`${base}_MatMulInteger`)),
    node('Cast', [yInt], [yFloat], ctx.names.fresh(`${base}_Cast`), { attributes: [intAttribute('to', DataType.FLOAT)] }),
    node('Mul', [aq[1], weight.scales], [scale], ctx.names.fresh(`${base}_scales`)),
    node('Mul', [yFloat, scale], n.outputs, ctx.names.fresh(`${base}_rescale`)),
  );
  return nodes;
}

/** table[ids] as int8 rows times their own scale: Gather both, Cast, Mul. */
function rewriteGather(n: OnnxNode, table: ScopedTensor, ctx: Q8Context): OnnxNode[] {
  const weight = int8Weight(table, ctx, 'row', (len) => [len, 1]);
  ctx.stats.gathers++;
  const ids = n.inputs[1];
  const [rowsQ, rowsF, rowScales] = ['_int8', '_float', '_scale'].map((s) => ctx.names.fresh(`${n.outputs[0]}${s}`));
  return [
    node('Gather', [weight.values, ids], [rowsQ], ctx.names.fresh(`${n.name || 'Gather'}_int8`)),
    node('Gather', [weight.scales, ids], [rowScales], ctx.names.fresh(`${n.name || 'Gather'}_scale`)),
    node('Cast', [rowsQ], [rowsF], ctx.names.fresh(`${rowsQ}_cast`), { attributes: [intAttribute('to', DataType.FLOAT)] }),
    node('Mul', [rowsF, rowScales], n.outputs, ctx.names.fresh(`${n.outputs[0]}_dequantize`)),
  ];
}

/** The kernel dequantized per output channel (axis 0) right before the float Conv. */
function rewriteConv(n: OnnxNode, kernel: ScopedTensor, ctx: Q8Context): OnnxNode[] {
  const weight = int8Weight(kernel, ctx, 'row', (len) => [len]);
  ctx.stats.convs++;
  const floatKernel = ctx.names.fresh(`${kernel.tensor.name}_dequantized`);
  const dq = node('DequantizeLinear', [weight.values, weight.scales], [floatKernel], ctx.names.fresh(`${floatKernel}_node`), { attributes: [intAttribute('axis', 0)] });
  return [dq, { ...n, inputs: [n.inputs[0], floatKernel, ...n.inputs.slice(2)] }];
}

/** Large float constants read by any other op: int8 with one scale, dequantized once per graph. */
function dequantizeLargeInputs(n: OnnxNode, scope: Scope, ctx: Q8Context, dequantized: Map<string, string>): OnnxNode[] {
  const before: OnnxNode[] = [];
  const inputs = n.inputs.map((name) => {
    const w = scope.get(name);
    if (!isConstantFloat(w, 1) || w.tensor.dims.reduce((a, b) => a * b, 1) < LARGE_CONSTANT) return name;
    let floatCopy = dequantized.get(name);
    if (!floatCopy) {
      const weight = int8Weight(w, ctx, 'tensor', () => []);
      floatCopy = ctx.names.fresh(`${name}_dequantized`);
      before.push(node('DequantizeLinear', [weight.values, weight.scales], [floatCopy], ctx.names.fresh(`${floatCopy}_node`)));
      dequantized.set(name, floatCopy);
      ctx.stats.constants++;
    }
    return floatCopy;
  });
  return [...before, { ...n, inputs }];
}
