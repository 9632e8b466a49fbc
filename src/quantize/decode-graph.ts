// The decode-only decoder (`onnx/decoder_with_past_model.onnx`, optimum's name for the
// with-past decoder) from a merged one, for folders exported without it (optimum,
// transformers.js conversions): the same surgery as training/export.py's
// decode_only_graph. The If on use_cache_branch is replaced by its then (cached) branch,
// inlined; the present.*.encoder.* outputs (the cross K/V passed through) are dropped;
// the reshapes' computed target shapes become constants (staticReshapes); then every
// node, input and initializer that feeds no output any more goes too. Same weights and
// the same arithmetic on the cached path, so the same logits.
import { NameAllocator, node, tensor, usedNames } from './graph.ts';
import { DataType, type OnnxGraph, type OnnxModel, type OnnxNode, type OnnxTensor } from './onnx-proto.ts';
import { repeatedInts } from './protobuf.ts';

export const DECODE_GRAPH_STEM = 'decoder_with_past_model';

const CROSS_PRESENT = /^present\.\d+\.encoder\.(key|value)$/;

/** The decode-only model, or undefined when the graph has no single If(use_cache_branch) to resolve. The input is not modified. */
export function decodeOnlyModel(model: OnnxModel): OnnxModel | undefined {
  const g = model.graph;
  const ifs = g.nodes.filter((n) => n.opType === 'If' && n.inputs.length === 1 && n.inputs[0] === 'use_cache_branch');
  const thenBranch = ifs.length === 1 ? ifs[0].attributes.find((a) => a.name === 'then_branch')?.g : undefined;
  if (!thenBranch) return undefined;
  const ifNode = ifs[0];
  const names = new NameAllocator(usedNames(g));
  // Values the outer graph defines: a name the branch defines again gets a fresh one.
  const outer = new Set([...g.inputs.map((v) => v.name), ...g.initializers.map((t) => t.name), ...g.nodes.filter((n) => n !== ifNode).flatMap((n) => n.outputs)]);
  const rename = new Map<string, string>();
  for (const name of [...thenBranch.initializers.map((t) => t.name), ...thenBranch.nodes.flatMap((n) => n.outputs)]) {
    if (outer.has(name)) rename.set(name, names.fresh(`then/${name}`));
  }
  const produced = new Set(thenBranch.nodes.flatMap((n) => n.outputs));
  const passThrough: OnnxNode[] = [];
  thenBranch.outputs.forEach((out, i) => {
    // A branch output its own nodes make takes the If's output name; one read from outside (an input, an initializer) is copied by an Identity.
    if (produced.has(out.name) && !thenBranch.inputs.some((v) => v.name === out.name)) rename.set(out.name, ifNode.outputs[i]);
    else passThrough.push(node('Identity', [rename.get(out.name) ?? out.name], [ifNode.outputs[i]], names.fresh(`then/pass_${i}`)));
  });
  const to = (name: string): string => rename.get(name) ?? name;
  const inlined = thenBranch.nodes.map((n) => ({ ...n, inputs: n.inputs.map(to), outputs: n.outputs.map(to) }));
  const initializers = [...g.initializers, ...thenBranch.initializers.map((t) => ({ ...t, name: to(t.name) }))];
  const nodes = g.nodes.flatMap((n) => (n === ifNode ? [...inlined, ...passThrough] : [n]));
  initializers.push(...staticReshapes(nodes, initializers, names));
  const outputs = g.outputs.filter((o) => !CROSS_PRESENT.test(o.name));
  const graph: OnnxGraph = { ...g, nodes: liveNodes(nodes, outputs.map((o) => o.name)), initializers, outputs };
  const read = new Set([...graph.nodes.flatMap((n) => [...n.inputs, ...subgraphReads(n)]), ...outputs.map((o) => o.name)]);
  graph.inputs = g.inputs.filter((v) => read.has(v.name));
  graph.initializers = initializers.filter((t) => read.has(t.name));
  graph.valueInfo = g.valueInfo.filter((v) => read.has(v.name));
  return { ...model, graph };
}

/** Nodes (in order) whose outputs reach `outputs`, directly or through other kept nodes. */
function liveNodes(nodes: readonly OnnxNode[], outputs: readonly string[]): OnnxNode[] {
  const needed = new Set(outputs);
  const live: OnnxNode[] = [];
  for (const n of [...nodes].reverse()) {
    if (!n.outputs.some((o) => needed.has(o))) continue;
    live.push(n);
    for (const i of [...n.inputs, ...subgraphReads(n)]) if (i) needed.add(i);
  }
  return live.reverse();
}

/** Outer values a node's subgraphs (a remaining If or Loop) read. */
function subgraphReads(n: OnnxNode): string[] {
  return n.attributes.flatMap((a) => [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]).flatMap((sub) => sub.nodes.flatMap((m) => [...m.inputs, ...subgraphReads(m)]));
}

/**
 * Constant target shapes for the reshapes torch exports as `x.view(*x.shape[:2], h, d)`:
 * Reshape(x, Concat(Unsqueeze(Gather(Shape(x), i)), ..., h, d)). A dimension gathered from
 * the reshaped tensor at its own position (or through the Transpose that made it) becomes
 * 0 (copy that dimension), one other computed dimension -1 (what the size implies),
 * constants stay. onnxruntime cannot fold these chains itself (the dims are symbolic);
 * without them a decode step runs fewer nodes. Rewrites `nodes` in place (the reshapes'
 * second input) and returns the new initializers; the chains are left for dead-node removal.
 */
function staticReshapes(nodes: OnnxNode[], initializers: readonly OnnxTensor[], names: NameAllocator): OnnxTensor[] {
  const producers = new Map(nodes.flatMap((n) => n.outputs.map((o): [string, OnnxNode] => [o, n])));
  const inits = new Map(initializers.map((t) => [t.name, t]));
  const constInts = (name: string): bigint[] | undefined => {
    const made = producers.get(name);
    const t = inits.get(name) ?? (made?.opType === 'Constant' ? made.attributes.find((a) => a.name === 'value')?.t : undefined);
    return t?.dataType === DataType.INT64 && t.rawData ? Array.from(new BigInt64Array(t.rawData.slice().buffer)) : undefined;
  };
  const added: OnnxTensor[] = [];
  nodes.forEach((n, k) => {
    if (n.opType !== 'Reshape' || n.attributes.some((a) => a.name === 'allowzero' && a.i)) return;
    const concat = producers.get(n.inputs[1]);
    if (concat?.opType !== 'Concat') return;
    const sources = new Map<string, bigint[] | null>([[n.inputs[0], null]]); // tensor → the perm that made the reshaped one from it
    const madeBy = producers.get(n.inputs[0]);
    const perm = madeBy?.opType === 'Transpose' ? madeBy.attributes.find((a) => a.name === 'perm') : undefined;
    if (madeBy && perm) sources.set(madeBy.inputs[0], repeatedInts(perm.rest.filter((f) => f.no === 8)));
    const target: bigint[] = [];
    for (const [pos, part] of concat.inputs.entries()) {
      const value = constInts(part);
      if (value) {
        if (value.length !== 1 || value[0] === 0n || (value[0] === -1n && target.includes(-1n))) return;
        target.push(value[0]);
        continue;
      }
      const unsqueeze = producers.get(part);
      const gather = unsqueeze?.opType === 'Unsqueeze' ? producers.get(unsqueeze.inputs[0]) : undefined;
      const shape = gather?.opType === 'Gather' ? producers.get(gather.inputs[0]) : undefined;
      const index = shape?.opType === 'Shape' && shape.attributes.length === 0 ? constInts(gather!.inputs[1]) : undefined;
      const from = shape && sources.get(shape.inputs[0]);
      const own = from === null ? BigInt(pos) : from?.[pos];
      if (index?.length === 1 && shape && sources.has(shape.inputs[0]) && index[0] === own) target.push(0n);
      else if (!target.includes(-1n)) target.push(-1n);
      else return;
    }
    const t = tensor(names.fresh(`${n.outputs[0]}/static_shape`), [target.length], DataType.INT64, BigInt64Array.from(target));
    added.push(t);
    nodes[k] = { ...n, inputs: [n.inputs[0], t.name, ...n.inputs.slice(2)] };
  });
  return added;
}
