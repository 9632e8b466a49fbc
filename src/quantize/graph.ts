// Graph-level helpers shared by the q8 and fp16 rewrites: walking nested graphs (If/Loop
// bodies) with the initializers they can see, fresh value names, value types and
// tensor payloads.
import { floatToHalf } from '../contract/float16.ts';
import { ProtoWriter, Wire, decodeFields, fieldBytes, fieldInt, type Field } from './protobuf.ts';
import { DataType, isExternalData, type OnnxAttribute, type OnnxGraph, type OnnxNode, type OnnxTensor, type OnnxValueInfo } from './onnx-proto.ts';

/** An initializer and the graph that owns it (a subgraph may use its parents'). */
export interface ScopedTensor {
  tensor: OnnxTensor;
  owner: OnnxGraph;
}

export type Scope = ReadonlyMap<string, ScopedTensor>;

/** Subgraphs held by a node's attributes (If branches, Loop/Scan bodies). */
export function subgraphs(node: OnnxNode): OnnxGraph[] {
  return node.attributes.flatMap((a: OnnxAttribute) => [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]);
}

/**
 * Visit a graph and every nested graph, outermost first, each with the initializers in
 * scope there. A subgraph's own initializers shadow the outer ones, as in ONNX.
 */
export function walkGraphs(graph: OnnxGraph, visit: (graph: OnnxGraph, scope: Scope) => void, outer: Scope = new Map()): void {
  const scope = new Map(outer);
  for (const t of graph.initializers) scope.set(t.name, { tensor: t, owner: graph });
  visit(graph, scope);
  for (const node of graph.nodes) for (const sub of subgraphs(node)) walkGraphs(sub, visit, scope);
}

/** Every value name used anywhere (inputs, outputs, initializers, node ends, node names). */
export function usedNames(graph: OnnxGraph): Set<string> {
  const names = new Set<string>();
  walkGraphs(graph, (g) => {
    for (const v of [...g.inputs, ...g.outputs, ...g.valueInfo]) names.add(v.name);
    for (const t of g.initializers) names.add(t.name);
    for (const n of g.nodes) [...n.inputs, ...n.outputs, n.name].forEach((x) => names.add(x));
  });
  return names;
}

/** Hands out names not used in the model yet (one allocator per model). */
export class NameAllocator {
  constructor(private readonly taken: Set<string>) {}

  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.taken.has(name); i++) name = `${base}_${i}`;
    this.taken.add(name);
    return name;
  }
}

/** How many nodes (in this graph and all nested graphs) read each value. */
export function countReaders(graph: OnnxGraph): Map<string, number> {
  const counts = new Map<string, number>();
  walkGraphs(graph, (g) => {
    for (const n of g.nodes) for (const i of n.inputs) if (i) counts.set(i, (counts.get(i) ?? 0) + 1);
    for (const o of g.outputs) counts.set(o.name, (counts.get(o.name) ?? 0) + 1);
  });
  return counts;
}

/** Drop initializers nothing reads any more (e.g. float weights replaced by int8 ones). */
export function dropUnread(graph: OnnxGraph): void {
  const readers = countReaders(graph);
  walkGraphs(graph, (g) => {
    g.initializers = g.initializers.filter((t) => readers.has(t.name));
  });
}

// TypeProto.tensor_type (1) → TypeProto.Tensor.elem_type (1)
export function elemType(v: OnnxValueInfo): number | undefined {
  const tensorType = v.type.find((f) => f.no === 1);
  if (!tensorType) return undefined;
  const elem = decodeFields(fieldBytes(tensorType)).find((f) => f.no === 1);
  return elem ? Number(fieldInt(elem)) : undefined;
}

export function setElemType(v: OnnxValueInfo, dataType: number): void {
  v.type = v.type.map((f): Field => {
    if (f.no !== 1) return f;
    const inner = decodeFields(fieldBytes(f)).map((x): Field => (x.no === 1 ? { no: 1, wire: Wire.Varint, value: BigInt(dataType) } : x));
    const w = new ProtoWriter();
    for (const x of inner) w.field(x);
    return { no: 1, wire: Wire.Bytes, value: w.finish() };
  });
}

export function node(opType: string, inputs: string[], outputs: string[], name: string, extra: Partial<OnnxNode> = {}): OnnxNode {
  return { opType, inputs, outputs, name, domain: '', attributes: [], rest: [], ...extra };
}

export function intAttribute(name: string, value: number): OnnxAttribute {
  return { name, type: 2, i: BigInt(value), rest: [] };
}

/** INTS attribute (type 7): non-negative values as unpacked `ints` (field 8) varints. */
export function intsAttribute(name: string, values: number[]): OnnxAttribute {
  return { name, type: 7, rest: values.map((v): Field => ({ no: 8, wire: Wire.Varint, value: BigInt(v) })) };
}

/** Float32 values of a FLOAT tensor, from raw_data or float_data (field 4). */
export function floatValues(t: OnnxTensor): Float32Array {
  if (t.dataType !== DataType.FLOAT) throw new Error(`${t.name}: expected a float tensor, got data type ${t.dataType}`);
  if (isExternalData(t)) {
    throw new Error(`${t.name}: weights in external data files are not supported by iris quantize`);
  }
  if (t.rawData) return new Float32Array(t.rawData.slice().buffer);
  const out: number[] = [];
  for (const f of t.rest.filter((x) => x.no === 4)) {
    if (f.wire === Wire.Varint || f.wire === Wire.Fixed64) throw new Error(`${t.name}: malformed float_data`);
    const view = new DataView(f.value.buffer, f.value.byteOffset, f.value.byteLength);
    for (let i = 0; i + 4 <= f.value.byteLength; i += 4) out.push(view.getFloat32(i, true));
  }
  return Float32Array.from(out);
}

export function tensor(name: string, dims: number[], dataType: number, data: Float32Array | Int8Array | Uint16Array | Uint8Array | BigInt64Array): OnnxTensor {
  return { name, dims, dataType, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), rest: [] };
}

/** The same tensor in float16: payload as raw_data, float_data dropped. */
export function toFloat16Tensor(t: OnnxTensor): OnnxTensor {
  const half = floatToHalf(floatValues(t));
  return { ...tensor(t.name, t.dims, DataType.FLOAT16, half), rest: t.rest.filter((f) => f.no !== 4) };
}
