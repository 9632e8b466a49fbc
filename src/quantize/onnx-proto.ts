// A typed view of the ONNX protobuf messages the quantizer rewrites: ModelProto →
// GraphProto → NodeProto / TensorProto / ValueInfoProto / AttributeProto. Field numbers
// are the public onnx.proto ones. Every field not named here stays in `rest` as raw bytes
// and is written back unchanged; fields are written in field-number order, as protobuf
// serializers do, so an untouched model re-encodes to the same bytes.
import {
  ProtoWriter, Wire, decodeFields, fieldBytes, fieldInt, fieldString, repeatedInts, type Field,
} from './protobuf.ts';

export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10, DOUBLE: 11 } as const;
export const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, GRAPHS: 10 } as const;

export interface OnnxTensor {
  name: string;
  dims: number[];
  dataType: number;
  /** Little-endian element bytes; undefined when the values sit in a typed field (kept in rest). */
  rawData?: Uint8Array;
  rest: Field[];
}

export interface OnnxAttribute {
  name: string;
  type: number;
  f?: number;
  i?: bigint;
  t?: OnnxTensor;
  g?: OnnxGraph;
  graphs?: OnnxGraph[];
  rest: Field[];
}

export interface OnnxNode {
  inputs: string[];
  outputs: string[];
  name: string;
  opType: string;
  domain: string;
  attributes: OnnxAttribute[];
  rest: Field[];
}

export interface OnnxValueInfo {
  name: string;
  /** The TypeProto's own fields, undecoded (see elemType / withElemType). */
  type: Field[];
  rest: Field[];
}

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  valueInfo: OnnxValueInfo[];
  rest: Field[];
}

export interface OpsetId {
  domain: string;
  version: number;
}

export interface OnnxModel {
  graph: OnnxGraph;
  opsetImports: OpsetId[];
  rest: Field[];
}

/** Splits fields by number: `take(n)` removes and returns field n's occurrences. */
function fieldTable(fields: readonly Field[]): { take: (no: number) => Field[]; rest: () => Field[] } {
  const taken = new Set<number>();
  return {
    take: (no) => {
      taken.add(no);
      return fields.filter((f) => f.no === no);
    },
    rest: () => fields.filter((f) => !taken.has(f.no)),
  };
}

const str = (fs: Field[]): string => (fs.length ? fieldString(fs[fs.length - 1]) : '');
const int = (fs: Field[]): bigint | undefined => (fs.length ? fieldInt(fs[fs.length - 1]) : undefined);

/** TensorProto.data_location (14) = EXTERNAL (1): the values sit in a file beside the model. */
export function isExternalData(t: OnnxTensor): boolean {
  return t.rest.some((f) => f.no === 14 && f.wire === Wire.Varint && f.value === 1n);
}

export function decodeTensor(buf: Uint8Array): OnnxTensor {
  const t = fieldTable(decodeFields(buf));
  const dims = repeatedInts(t.take(1)).map(Number);
  const dataType = Number(int(t.take(2)) ?? 0n);
  const name = str(t.take(8));
  const raw = t.take(9);
  return { name, dims, dataType, rawData: raw.length ? fieldBytes(raw[raw.length - 1]) : undefined, rest: t.rest() };
}

function decodeAttribute(buf: Uint8Array): OnnxAttribute {
  const t = fieldTable(decodeFields(buf));
  const name = str(t.take(1));
  const type = Number(int(t.take(20)) ?? 0n);
  const f = t.take(2);
  const attr: OnnxAttribute = { name, type, rest: [] };
  if (f.length && f[0].wire === Wire.Fixed32) attr.f = new DataView(f[0].value.buffer, f[0].value.byteOffset, 4).getFloat32(0, true);
  const i = int(t.take(3));
  if (i !== undefined) attr.i = i;
  const tensor = t.take(5);
  if (tensor.length) attr.t = decodeTensor(fieldBytes(tensor[0]));
  const graph = t.take(6);
  if (graph.length) attr.g = decodeGraph(fieldBytes(graph[0]));
  const graphs = t.take(11);
  if (graphs.length) attr.graphs = graphs.map((x) => decodeGraph(fieldBytes(x)));
  attr.rest = t.rest();
  return attr;
}

function decodeNode(buf: Uint8Array): OnnxNode {
  const t = fieldTable(decodeFields(buf));
  return {
    inputs: t.take(1).map(fieldString),
    outputs: t.take(2).map(fieldString),
    name: str(t.take(3)),
    opType: str(t.take(4)),
    domain: str(t.take(7)),
    attributes: t.take(5).map((f) => decodeAttribute(fieldBytes(f))),
    rest: t.rest(),
  };
}

function decodeValueInfo(buf: Uint8Array): OnnxValueInfo {
  const t = fieldTable(decodeFields(buf));
  const type = t.take(2);
  return { name: str(t.take(1)), type: type.length ? decodeFields(fieldBytes(type[0])) : [], rest: t.rest() };
}

export function decodeGraph(buf: Uint8Array): OnnxGraph {
  const t = fieldTable(decodeFields(buf));
  return {
    nodes: t.take(1).map((f) => decodeNode(fieldBytes(f))),
    name: str(t.take(2)),
    initializers: t.take(5).map((f) => decodeTensor(fieldBytes(f))),
    inputs: t.take(11).map((f) => decodeValueInfo(fieldBytes(f))),
    outputs: t.take(12).map((f) => decodeValueInfo(fieldBytes(f))),
    valueInfo: t.take(13).map((f) => decodeValueInfo(fieldBytes(f))),
    rest: t.rest(),
  };
}

export function decodeModel(buf: Uint8Array): OnnxModel {
  const t = fieldTable(decodeFields(buf));
  const graph = t.take(7);
  if (graph.length === 0) throw new Error('not an ONNX model: no graph');
  const opsetImports = t.take(8).map((f) => {
    const o = fieldTable(decodeFields(fieldBytes(f)));
    return { domain: str(o.take(1)), version: Number(int(o.take(2)) ?? 0n) };
  });
  return { graph: decodeGraph(fieldBytes(graph[0])), opsetImports, rest: t.rest() };
}

/** Known fields plus the passed-through ones, in field-number order (stable). */
function encode(known: ProtoWriter, rest: readonly Field[]): Uint8Array {
  const fields = [...decodeFields(known.finish()), ...rest].map((f, i) => ({ f, i }));
  fields.sort((a, b) => a.f.no - b.f.no || a.i - b.i);
  const w = new ProtoWriter();
  for (const { f } of fields) w.field(f);
  return w.finish();
}

export function encodeTensor(t: OnnxTensor): Uint8Array {
  const w = new ProtoWriter();
  for (const d of t.dims) w.varint(1, d);
  w.varint(2, t.dataType);
  if (t.name) w.string(8, t.name);
  if (t.rawData) w.bytes(9, t.rawData);
  return encode(w, t.rest);
}

function encodeAttribute(a: OnnxAttribute): Uint8Array {
  const w = new ProtoWriter();
  w.string(1, a.name);
  if (a.f !== undefined) {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, a.f, true);
    w.field({ no: 2, wire: Wire.Fixed32, value: bytes });
  }
  if (a.i !== undefined) w.varint(3, a.i);
  if (a.t) w.bytes(5, encodeTensor(a.t));
  if (a.g) w.bytes(6, encodeGraph(a.g));
  for (const g of a.graphs ?? []) w.bytes(11, encodeGraph(g));
  if (a.type) w.varint(20, a.type);
  return encode(w, a.rest);
}

function encodeNode(n: OnnxNode): Uint8Array {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const a of n.attributes) w.bytes(5, encodeAttribute(a));
  if (n.domain) w.string(7, n.domain);
  return encode(w, n.rest);
}

function encodeValueInfo(v: OnnxValueInfo): Uint8Array {
  const w = new ProtoWriter().string(1, v.name);
  if (v.type.length) w.bytes(2, encode(new ProtoWriter(), v.type));
  return encode(w, v.rest);
}

export function encodeGraph(g: OnnxGraph): Uint8Array {
  const w = new ProtoWriter();
  for (const n of g.nodes) w.bytes(1, encodeNode(n));
  if (g.name) w.string(2, g.name);
  for (const t of g.initializers) w.bytes(5, encodeTensor(t));
  for (const v of g.inputs) w.bytes(11, encodeValueInfo(v));
  for (const v of g.outputs) w.bytes(12, encodeValueInfo(v));
  for (const v of g.valueInfo) w.bytes(13, encodeValueInfo(v));
  return encode(w, g.rest);
}

export function encodeModel(m: OnnxModel): Uint8Array {
  const w = new ProtoWriter();
  w.bytes(7, encodeGraph(m.graph));
  for (const o of m.opsetImports) {
    const op = new ProtoWriter();
    if (o.domain) op.string(1, o.domain);
    w.bytes(8, op.varint(2, o.version).finish());
  }
  return encode(w, m.rest);
}
