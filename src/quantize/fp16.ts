// The fp16 rewrite (the `_fp16.onnx` variant): the whole graph in float16, inputs and
// outputs included (past/present K/V, hidden states, logits), the transformers.js
// convention. Ops onnxruntime's CPU provider has no float16 kernel for still run: ORT
// wraps them in Casts itself (InsertCastTransformer), computing them in float32.
import { Wire, type Field } from './protobuf.ts';
import { NameAllocator, elemType, intAttribute, node, setElemType, usedNames, tensor, toFloat16Tensor, walkGraphs } from './graph.ts';
import { AttrType, DataType, type OnnxAttribute, type OnnxGraph, type OnnxModel, type OnnxNode, type OnnxTensor, type OnnxValueInfo } from './onnx-proto.ts';

/** Inputs the ONNX spec types as float32 whatever the data type (op → input index). */
const FLOAT32_ONLY_INPUTS: Readonly<Record<string, readonly number[]>> = { Resize: [2], Upsample: [1] };

export interface Fp16Stats {
  initializers: number;
  constants: number;
  casts: number;
  values: number;
}

/**
 * Graph inputs that stay float32, cast to float16 as the graph's first node. transformers.js
 * feeds its own float32 preprocessing output as pixel_values whatever the session declares
 * (its fp16 script keeps all I/O float32); every other input (hidden states, pasts) it
 * builds from the session's declared types, so those can be float16.
 */
export const FLOAT32_GRAPH_INPUTS: readonly string[] = ['pixel_values'];

export function convertModelFp16(model: OnnxModel, float32Inputs: readonly string[] = FLOAT32_GRAPH_INPUTS): Fp16Stats {
  const stats: Fp16Stats = { initializers: 0, constants: 0, casts: 0, values: 0 };
  const keepFloat32 = float32OnlyValues(model.graph);
  walkGraphs(model.graph, (graph) => convertGraph(graph, keepFloat32, stats));
  const names = new NameAllocator(usedNames(model.graph));
  for (const input of model.graph.inputs.filter((v) => float32Inputs.includes(v.name) && elemType(v) === DataType.FLOAT16)) {
    castInputAtEntry(model.graph, input, names);
  }
  return stats;
}

/** The input stays float32; one Cast feeds every former reader (nested graphs included) a float16 copy. */
function castInputAtEntry(root: OnnxGraph, input: OnnxValueInfo, names: NameAllocator): void {
  setElemType(input, DataType.FLOAT);
  const half = names.fresh(`${input.name}_fp16`);
  walkGraphs(root, (g) => {
    for (const n of g.nodes) n.inputs = n.inputs.map((i) => (i === input.name ? half : i));
  });
  root.nodes.unshift(node('Cast', [input.name], [half], names.fresh(`${input.name}_cast_fp16`), { attributes: [intAttribute('to', DataType.FLOAT16)] }));
}

function float32OnlyValues(root: OnnxGraph): Set<string> {
  const names = new Set<string>();
  walkGraphs(root, (g) => {
    for (const n of g.nodes) for (const i of FLOAT32_ONLY_INPUTS[n.opType] ?? []) if (n.inputs[i]) names.add(n.inputs[i]);
  });
  return names;
}

function convertGraph(graph: OnnxGraph, keepFloat32: ReadonlySet<string>, stats: Fp16Stats): void {
  graph.initializers = graph.initializers.map((t) => {
    if (t.dataType !== DataType.FLOAT || keepFloat32.has(t.name)) return t;
    stats.initializers++;
    return toFloat16Tensor(t);
  });
  for (const v of [...graph.inputs, ...graph.outputs, ...graph.valueInfo]) {
    if (elemType(v) === DataType.FLOAT && !keepFloat32.has(v.name)) {
      setElemType(v, DataType.FLOAT16);
      stats.values++;
    }
  }
  for (const n of graph.nodes) convertNode(n, keepFloat32, stats);
}

function convertNode(n: OnnxNode, keepFloat32: ReadonlySet<string>, stats: Fp16Stats): void {
  if (n.domain !== '' || n.outputs.some((o) => keepFloat32.has(o))) return;
  if (n.opType === 'Cast') {
    const to = n.attributes.find((a) => a.name === 'to');
    if (to?.i === BigInt(DataType.FLOAT)) {
      to.i = BigInt(DataType.FLOAT16);
      stats.casts++;
    }
  } else if (n.opType === 'Constant') {
    n.attributes = n.attributes.map((a) => constantAttribute(a, stats));
  } else if (n.opType === 'ConstantOfShape') {
    const value = n.attributes.find((a) => a.name === 'value');
    // Without a value attribute ConstantOfShape yields float32 zeros: say float16 zero instead.
    if (!value) n.attributes.push(tensorAttribute('value', tensor('', [1], DataType.FLOAT16, new Uint16Array(1))));
    else if (value.t?.dataType === DataType.FLOAT) value.t = toFloat16Tensor(value.t);
    stats.constants++;
  }
}

/** Constant's float forms (value tensor, value_float, value_floats) → a float16 value tensor. */
function constantAttribute(a: OnnxAttribute, stats: Fp16Stats): OnnxAttribute {
  if (a.name === 'value' && a.t?.dataType === DataType.FLOAT) {
    stats.constants++;
    return { ...a, t: toFloat16Tensor(a.t) };
  }
  if (a.name === 'value_float' && a.f !== undefined) {
    stats.constants++;
    return tensorAttribute('value', toFloat16Tensor(tensor('', [], DataType.FLOAT, Float32Array.of(a.f))));
  }
  if (a.name === 'value_floats') {
    stats.constants++;
    const values = repeatedFloats(a.rest.filter((f) => f.no === 7));
    return tensorAttribute('value', toFloat16Tensor(tensor('', [values.length], DataType.FLOAT, values)));
  }
  return a;
}

function tensorAttribute(name: string, t: OnnxTensor): OnnxAttribute {
  return { name, type: AttrType.TENSOR, t, rest: [] };
}

/** AttributeProto.floats: one fixed32 per element, or packed. */
function repeatedFloats(fields: readonly Field[]): Float32Array {
  const out: number[] = [];
  for (const f of fields) {
    if (f.wire === Wire.Varint) continue;
    const view = new DataView(f.value.buffer, f.value.byteOffset, f.value.byteLength);
    for (let i = 0; i + 4 <= f.value.byteLength; i += 4) out.push(view.getFloat32(i, true));
  }
  return Float32Array.from(out);
}
