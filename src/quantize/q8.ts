// The q8 rewrite (dynamic quantization, the `_quantized.onnx` variant): every MatMul whose
// B is a constant float matrix becomes an int8 × uint8 integer matrix multiply whose
// activations are quantized at run time, one scale per row, in the main graph and inside If/Loop bodies.
// Optionally embedding tables (Gather), Conv kernels and other large float constants are
// stored as int8 too, for file size rather than speed: onnxruntime restores them to float
// once, when it loads the model.
import { countReaders, dropUnread, intAttribute, node, NameAllocator, floatValues, tensor, usedNames, walkGraphs, type Scope, type ScopedTensor } from './graph.ts';
import { quantizePerColumn, quantizePerRow } from './int8.ts';
import { KernelBuilder, columnSums, matMulRows, quantizeRows, type RowQuantized } from './q8-matmul.ts';
import { DataType, type OnnxGraph, type OnnxModel, type OnnxNode, type OnnxTensor } from './onnx-proto.ts';

/**
 * 'dynamic-quantize-matmul': one com.microsoft DynamicQuantizeMatMul node per MatMul, bias fused.
 * The com.microsoft kernel quantizes each activation with one scale, so a row's result
 * depends on its batch-mates; kept for comparison, not the default.
 * 'matmul-integer': standard ONNX ops, activations quantized per row (batch-invariant):
 * per-row uint8 quantization + MatMulInteger + zero-point correction + rescale.
 */
export type MatMulKernel = 'dynamic-quantize-matmul' | 'matmul-integer';

export interface Q8Options {
  readonly kernel: MatMulKernel;
  /** Store Gather tables (token/position embeddings) as int8 with a scale per row (restored to float at load). */
  readonly embeddings: boolean;
  /** Store Conv kernels as int8 with a scale per output channel (restored to float at load). */
  readonly convWeights: boolean;
  /** Store any other float constant of at least LARGE_CONSTANT values (e.g. a learned position table) as int8 with one scale. */
  readonly largeConstants: boolean;
}

export const LARGE_CONSTANT = 4096;

/**
 * matmul-integer is the default because it is batch-invariant (per-row activation scales),
 * which the continuous-batching engine relies on; it is also plain ONNX, which
 * transformers.js runs as well.
 */
export const DEFAULT_Q8: Q8Options = Object.freeze({ kernel: 'matmul-integer', embeddings: true, convWeights: true, largeConstants: true });

export interface Q8Stats {
  matmuls: number;
  fusedBiases: number;
  gathers: number;
  convs: number;
  constants: number;
}

/** int8 values, their scales and, for MatMul weights (per column), the column sums. */
type WeightNames = { values: string; scales: string; colSums?: string };

/** A tied table (embedding Gather and LM-head MatMul) needs both a per-row and a per-column copy. */
type Layout = 'column' | 'row' | 'tensor';

interface Q8Context {
  readonly options: Q8Options;
  readonly names: NameAllocator;
  readonly readers: ReadonlyMap<string, number>;
  /** Each float weight is quantized once, however many nodes read it. */
  readonly done: Map<OnnxTensor, Map<Layout, WeightNames>>;
  readonly kernel: KernelBuilder;
  readonly stats: Q8Stats;
}

export function quantizeModelQ8(model: OnnxModel, options: Q8Options = DEFAULT_Q8): Q8Stats {
  const stats: Q8Stats = { matmuls: 0, fusedBiases: 0, gathers: 0, convs: 0, constants: 0 };
  const names = new NameAllocator(usedNames(model.graph));
  const ctx: Q8Context = { options, names, kernel: new KernelBuilder(names), readers: countReaders(model.graph), done: new Map(), stats };
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
  const quantizedInputs = new Map<string, RowQuantized>(); // activation → its per-row uint8 copy
  const dequantized = new Map<string, string>(); // int8-stored constant → its float copy in this graph
  for (const n of graph.nodes) {
    if (fused.has(n)) continue;
    if (n.domain !== '') out.push(n);
    else if (n.opType === 'MatMul' && constantMatrix(scope, n.inputs[1])) out.push(...rewriteMatMul(n, graph, scope, ctx, fused, quantizedInputs));
    else if (n.opType === 'Gather' && ctx.options.embeddings && isEmbeddingGather(n, scope)) out.push(...rewriteGather(n, scope.get(n.inputs[0])!, ctx, dequantized));
    else if (n.opType === 'Conv' && ctx.options.convWeights && isConstantFloat(scope.get(n.inputs[1]), 3)) out.push(...rewriteConv(n, scope.get(n.inputs[1])!, ctx, dequantized));
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
function int8Weight(w: ScopedTensor, ctx: Q8Context, layout: Layout, scaleDims: (n: number) => number[]): WeightNames {
  const cached = ctx.done.get(w.tensor)?.get(layout);
  if (cached) return cached;
  const size = w.tensor.dims.reduce((a, b) => a * b, 1);
  const rows = layout === 'tensor' ? 1 : w.tensor.dims[0];
  const cols = size / rows;
  const q = layout === 'column' ? quantizePerColumn(floatValues(w.tensor), rows, cols) : quantizePerRow(floatValues(w.tensor), rows, cols);
  const names: WeightNames = { values: ctx.names.fresh(`${w.tensor.name}_quantized`), scales: ctx.names.fresh(`${w.tensor.name}_scale`) };
  w.owner.initializers.push(
    tensor(names.values, w.tensor.dims, DataType.INT8, q.values),
    tensor(names.scales, scaleDims(q.scales.length), DataType.FLOAT, q.scales),
  );
  if (layout === 'column') {
    names.colSums = ctx.names.fresh(`${w.tensor.name}_colsum`);
    w.owner.initializers.push(tensor(names.colSums, [cols], DataType.FLOAT, columnSums(q.values, rows, cols)));
  }
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

function rewriteMatMul(n: OnnxNode, graph: OnnxGraph, scope: Scope, ctx: Q8Context, fused: Set<OnnxNode>, quantizedInputs: Map<string, RowQuantized>): OnnxNode[] {
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
  return matMulIntegerNodes(n, graph, w, weight, ctx, quantizedInputs);
}

/**
 * Per-row activation quantization (once per activation: q, k and v projections share it),
 * then MatMulInteger and the rescale; see q8-matmul.ts. New names start from the weight's
 * name, which is short, rather than the activation's, which carries the whole module path.
 */
function matMulIntegerNodes(n: OnnxNode, graph: OnnxGraph, w: ScopedTensor, weight: WeightNames, ctx: Q8Context, quantizedInputs: Map<string, RowQuantized>): OnnxNode[] {
  const [k, numCols] = w.tensor.dims;
  const base = w.tensor.name;
  const nodes: OnnxNode[] = [];
  let aq = quantizedInputs.get(n.inputs[0]);
  if (!aq) {
    const rows = quantizeRows(graph, n.inputs[0], k, base, ctx.kernel);
    nodes.push(...rows.nodes);
    quantizedInputs.set(n.inputs[0], (aq = rows.out));
  }
  return [...nodes, ...matMulRows(graph, aq, weight, weight.colSums!, numCols, n.outputs[0], base, ctx.kernel)];
}

/** The table stored int8 with a scale per row (token), restored to float at load; the Gather is unchanged. */
function rewriteGather(n: OnnxNode, table: ScopedTensor, ctx: Q8Context, dequantized: Map<string, string>): OnnxNode[] {
  ctx.stats.gathers++;
  const copy = dequantizedCopy(table, 'row', (len) => [len, 1], ctx, dequantized); // scales [rows, 1]
  return [...copy.nodes, { ...n, inputs: [copy.output, ...n.inputs.slice(1)] }];
}

/**
 * Weight-only storage: Cast(int8) × scale. Both inputs are initializers, so onnxruntime
 * constant-folds the pair once when the session is created and runs the float op as
 * before. (DequantizeLinear, which onnxruntime deliberately does not fold, cost the
 * encoder ~20 % at 32 images: measured.)
 */
function dequantizedCopy(w: ScopedTensor, layout: Layout, scaleDims: (n: number) => number[], ctx: Q8Context, dequantized: Map<string, string>): { nodes: OnnxNode[]; output: string } {
  const base = w.tensor.name;
  const known = dequantized.get(base);
  if (known) return { nodes: [], output: known };
  const weight = int8Weight(w, ctx, layout, scaleDims);
  const [asFloat, output] = ['_f32', '_dequantized'].map((x) => ctx.names.fresh(`${base}${x}`));
  dequantized.set(base, output);
  return {
    output,
    nodes: [
      node('Cast', [weight.values], [asFloat], ctx.names.fresh(`${base}_Cast`), { attributes: [intAttribute('to', DataType.FLOAT)] }),
      node('Mul', [asFloat, weight.scales], [output], ctx.names.fresh(`${base}_dequantize`)),
    ],
  };
}

/** The kernel stored int8 with a scale per output channel, restored to float before the Conv. */
function rewriteConv(n: OnnxNode, kernel: ScopedTensor, ctx: Q8Context, dequantized: Map<string, string>): OnnxNode[] {
  ctx.stats.convs++;
  const copy = dequantizedCopy(kernel, 'row', (len) => [len, ...kernel.tensor.dims.slice(1).map(() => 1)], ctx, dequantized); // scales [M, 1, 1, 1]
  return [...copy.nodes, { ...n, inputs: [n.inputs[0], copy.output, ...n.inputs.slice(2)] }];
}

/** Large float constants read by any other op: int8 with one scale, dequantized once per graph. */
function dequantizeLargeInputs(n: OnnxNode, scope: Scope, ctx: Q8Context, dequantized: Map<string, string>): OnnxNode[] {
  const before: OnnxNode[] = [];
  const inputs = n.inputs.map((name) => {
    const w = scope.get(name);
    if (!isConstantFloat(w, 1) || w.tensor.dims.reduce((a, b) => a * b, 1) < LARGE_CONSTANT) return name;
    const copy = dequantizedCopy(w, 'tensor', () => [], ctx, dequantized); // one scale
    before.push(...copy.nodes);
    ctx.stats.constants += copy.nodes.length > 0 ? 1 : 0;
    return copy.output;
  });
  return [...before, { ...n, inputs }];
}
