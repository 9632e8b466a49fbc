// The protobuf wire format, schema-free: a message is its list of fields in file order,
// each a field number, a wire type and the undecoded value. The ONNX layer
// (onnx-proto.ts) interprets the few fields it rewrites and passes every other field
// through as these raw bytes, so nothing it does not understand is lost. Written by hand
// because Iris must not ship onnx.proto, and users of the package should not need Python.

export const enum Wire {
  Varint = 0,
  Fixed64 = 1,
  Bytes = 2,
  Fixed32 = 5,
}

/** Varints as bigint (int64 fields can exceed 2^53); every other wire type as its bytes. */
export type Field =
  | { readonly no: number; readonly wire: Wire.Varint; readonly value: bigint }
  | { readonly no: number; readonly wire: Wire.Fixed64 | Wire.Bytes | Wire.Fixed32; readonly value: Uint8Array };

export class ProtobufError extends Error {}

export function decodeFields(buf: Uint8Array): Field[] {
  const fields: Field[] = [];
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (pos >= buf.length) throw new ProtobufError('truncated varint');
      const byte = buf[pos++];
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      if (shift > 63n) throw new ProtobufError('varint longer than 10 bytes');
    }
  };
  const take = (n: number): Uint8Array => {
    if (pos + n > buf.length) throw new ProtobufError(`field runs past the end (${n} bytes at ${pos} of ${buf.length})`);
    const out = buf.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  while (pos < buf.length) {
    const key = Number(varint());
    const no = key >>> 3;
    const wire = key & 7;
    if (wire === Wire.Varint) fields.push({ no, wire, value: varint() });
    else if (wire === Wire.Fixed64) fields.push({ no, wire, value: take(8) });
    else if (wire === Wire.Fixed32) fields.push({ no, wire, value: take(4) });
    else if (wire === Wire.Bytes) fields.push({ no, wire, value: take(Number(varint())) });
    else throw new ProtobufError(`unsupported wire type ${wire} (field ${no})`);
  }
  return fields;
}

/** Collects encoded parts and joins them once: messages nest, so lengths are known bottom-up. */
export class ProtoWriter {
  private readonly parts: Uint8Array[] = [];
  private size = 0;

  private push(bytes: Uint8Array): void {
    this.parts.push(bytes);
    this.size += bytes.length;
  }

  private varintBytes(value: bigint): Uint8Array {
    let v = BigInt.asUintN(64, value); // negative int64 → ten-byte two's complement, as protobuf does
    const out: number[] = [];
    do {
      const low = Number(v & 0x7fn);
      v >>= 7n;
      out.push(v > 0n ? low | 0x80 : low);
    } while (v > 0n);
    return Uint8Array.from(out);
  }

  field(field: Field): this {
    this.push(this.varintBytes(BigInt((field.no << 3) | field.wire)));
    if (field.wire === Wire.Varint) this.push(this.varintBytes(field.value));
    else {
      if (field.wire === Wire.Bytes) this.push(this.varintBytes(BigInt(field.value.length)));
      this.push(field.value);
    }
    return this;
  }

  varint(no: number, value: bigint | number): this {
    return this.field({ no, wire: Wire.Varint, value: BigInt(value) });
  }

  bytes(no: number, value: Uint8Array): this {
    return this.field({ no, wire: Wire.Bytes, value });
  }

  string(no: number, value: string): this {
    return this.bytes(no, TEXT_ENCODER.encode(value));
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let offset = 0;
    for (const p of this.parts) {
      out.set(p, offset);
      offset += p.length;
    }
    return out;
  }
}

const TEXT_ENCODER = new TextEncoder();
const TEXT_DECODER = new TextDecoder('utf-8', { fatal: true });

export function fieldString(field: Field): string {
  if (field.wire !== Wire.Bytes) throw new ProtobufError(`field ${field.no}: expected a string, got wire type ${field.wire}`);
  return TEXT_DECODER.decode(field.value);
}

export function fieldBytes(field: Field): Uint8Array {
  if (field.wire !== Wire.Bytes) throw new ProtobufError(`field ${field.no}: expected bytes, got wire type ${field.wire}`);
  return field.value;
}

/** A varint field read as a signed 64-bit integer (int64/int32 fields). */
export function fieldInt(field: Field): bigint {
  if (field.wire !== Wire.Varint) throw new ProtobufError(`field ${field.no}: expected a varint, got wire type ${field.wire}`);
  return BigInt.asIntN(64, field.value);
}

/** Repeated int64 fields may arrive packed (one Bytes field) or one varint per element. */
export function repeatedInts(fields: readonly Field[]): bigint[] {
  const out: bigint[] = [];
  for (const f of fields) {
    if (f.wire === Wire.Varint) out.push(BigInt.asIntN(64, f.value));
    else if (f.wire === Wire.Bytes) out.push(...packedVarints(f.value));
    else throw new ProtobufError(`field ${f.no}: expected integers, got wire type ${f.wire}`);
  }
  return out;
}

/** A packed run of varints (proto3-style repeated integers). */
function packedVarints(packed: Uint8Array): bigint[] {
  const out: bigint[] = [];
  let value = 0n;
  let shift = 0n;
  for (const byte of packed) {
    value |= BigInt(byte & 0x7f) << shift;
    shift += 7n;
    if ((byte & 0x80) === 0) {
      out.push(BigInt.asIntN(64, value));
      value = 0n;
      shift = 0n;
    }
  }
  if (shift !== 0n) throw new ProtobufError('truncated packed varint');
  return out;
}
