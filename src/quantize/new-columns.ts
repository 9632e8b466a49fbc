// A decode step's new K/V columns as outputs of their own. A decode-only graph gives
// back each present.* as Concat(past_key_values.*, the step's new columns) on the
// sequence axis: the whole cache, which onnxruntime-node copies into a fresh ArrayBuffer
// every step (at 32 rows and a past of 26 on shapes-base, 35 of a step's 89 µs per row,
// and the garbage it leaves drives the collector). With each Concat's second input
// exposed as one more output, the runner fetches only the new columns and appends them
// to the past it already holds, in buffers it reuses (text/kv-cache.ts, KvPool). The
// nodes, weights and arithmetic are untouched: same logits, same cache.
import { elemType } from './graph.ts';
import { type OnnxModel, type OnnxValueInfo } from './onnx-proto.ts';
import { ProtoWriter, Wire } from './protobuf.ts';

const PRESENT = /^present\.(\d+)(\.decoder)?\.(key|value)$/;

export interface NewColumnOutputs {
  readonly model: OnnxModel;
  /** present.* output name → the output holding only that step's new columns ([batch, heads, seq, headDim]). */
  readonly outputs: ReadonlyMap<string, string>;
}

/**
 * The model with every self-attention present's new columns as an extra output, or
 * undefined unless every present is Concat(its past input, new) on axis 2 (a fused
 * attention op or another cache layout: the runner then fetches the presents as they are).
 * The input is not modified.
 */
export function exposeNewColumns(model: OnnxModel): NewColumnOutputs | undefined {
  const g = model.graph;
  const presents = g.outputs.filter((o) => PRESENT.test(o.name));
  if (presents.length === 0) return undefined;
  const producers = new Map(g.nodes.flatMap((n) => n.outputs.map((o): [string, (typeof g.nodes)[number]] => [o, n])));
  const inputs = new Set(g.inputs.map((v) => v.name));
  const outputs = new Map<string, string>();
  for (const present of presents) {
    const past = present.name.replace(/^present/, 'past_key_values');
    const concat = producers.get(present.name);
    const axis = concat?.attributes.find((a) => a.name === 'axis')?.i;
    if (!concat || concat.opType !== 'Concat' || concat.domain !== '' || concat.inputs.length !== 2) return undefined;
    if (concat.inputs[0] !== past || !inputs.has(past) || (axis !== 2n && axis !== -2n)) return undefined;
    const columns = concat.inputs[1];
    if (inputs.has(columns) || g.outputs.some((o) => o.name === columns) || [...outputs.values()].includes(columns)) return undefined;
    outputs.set(present.name, columns);
  }
  const added: OnnxValueInfo[] = presents.map((p) => ({ name: outputs.get(p.name)!, type: tensorTypeOnly(p), rest: [] }));
  return { model: { ...model, graph: { ...g, outputs: [...g.outputs, ...added] } }, outputs };
}

/** The present's element type, no shape (its sequence length is past + new; the columns' is new). */
function tensorTypeOnly(like: OnnxValueInfo): OnnxValueInfo['type'] {
  const elem = elemType(like);
  if (elem === undefined) return like.type;
  return [{ no: 1, wire: Wire.Bytes, value: new ProtoWriter().varint(1, elem).finish() }]; // TypeProto.tensor_type { elem_type }
}
