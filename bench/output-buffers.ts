// npx tsx bench/output-buffers.ts [--model DIR] [--rows 8,32] [--rounds 9] [--calls 200]
// Does handing onnxruntime preallocated output tensors (session.run(feeds, {name: Tensor}),
// which onnxruntime-node 1.30 accepts and fills in place) make a decode step cheaper than
// letting it allocate the logits and KV outputs every call? The decode-only graph at a
// fixed past, interleaved rounds, process CPU (GC threads included). Two buffer sets are
// alternated, as a step's presents become the next step's pasts; with a fixed past this
// is the most reuse can buy (a real batch grows a column per step). Measured 2026-12-02
// on shapes-base, allocated/preallocated: 1.00× at 8 rows and 0.96× at 32 (an earlier
// run: 0.99×, 0.90×). Preallocating is not cheaper, so Iris lets onnxruntime allocate:
// onnxruntime-node 1.30 writes into the given buffers but still returns each output in
// a new ArrayBuffer (the returned tensors' buffers are not the ones passed), so reuse only
// adds a copy; the KV outputs' allocation (and the GC it drives) stays either way.
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { DEFAULT_MODEL_DIR, loadIrisModel, sessionOptionsOf } from '../src/model/load.ts';
import { decodeStep, prefillStep } from '../text/batch-inputs.ts';
import { median } from './measure.ts';

const { values } = parseArgs({ options: { model: { type: 'string' }, rows: { type: 'string' }, rounds: { type: 'string' }, calls: { type: 'string' } } });
const model = await loadIrisModel(resolve(values.model ?? DEFAULT_MODEL_DIR), { threads: 1 });
const session = await ort.InferenceSession.create(join(model.folder.dir, 'onnx', 'decoder_with_past_model.onnx'), sessionOptionsOf({ threads: 1 }));
const rounds = Number(values.rounds ?? 9);
const calls = Number(values.calls ?? 200);
const cpuUs = (): number => {
  const { user, system } = process.cpuUsage();
  return user + system;
};
const int64 = (xs: Int32Array, dims: number[]): ort.Tensor => new ort.Tensor('int64', BigInt64Array.from(xs, (v) => BigInt(v)), dims);

for (const rows of (values.rows ?? '8,32').split(',').map(Number)) {
  const { numPatches, hiddenSize } = { numPatches: 64, hiddenSize: model.runner.layout.numHeads * model.runner.layout.headDim };
  const first = prefillStep(Array.from({ length: rows }, () => Int32Array.from({ length: 16 }, (_, j) => (j === 0 ? 1 : 5 + j))), 0);
  const out = await model.runner.step({ tokens: first.step, encoderStates: { data: new Float32Array(rows * numPatches * hiddenSize).fill(0.01), numPatches, hiddenSize }, cache: model.runner.emptyCache(rows) });
  const next = decodeStep(first.state, new Int32Array(rows).fill(5));
  const available: Record<string, ort.Tensor> = {
    ...out.cache.feeds(),
    input_ids: int64(next.step.inputIds, [rows, 1]),
    attention_mask: int64(next.step.attentionMask, [rows, next.step.attentionMask.length / rows]),
    position_ids: int64(next.step.positionIds, [rows, 1]),
  };
  const feeds = Object.fromEntries(session.inputNames.map((n) => [n, available[n]]));
  const shapes = await session.run(feeds);
  const sets = [0, 1].map(() => Object.fromEntries(session.outputNames.map((n) => [n, new ort.Tensor('float32', new Float32Array(shapes[n].data.length), shapes[n].dims)])));
  let turn = 0;
  const allocated = (): Promise<unknown> => session.run(feeds, session.outputNames);
  const preallocated = (): Promise<unknown> => session.run(feeds, sets[turn++ & 1]);
  const time = async (run: () => Promise<unknown>): Promise<number> => {
    for (let i = 0; i < 10; i++) await run();
    const started = cpuUs();
    for (let i = 0; i < calls; i++) await run();
    return (cpuUs() - started) / calls;
  };
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      a.push(await time(allocated));
      b.push(await time(preallocated));
    } else {
      b.push(await time(preallocated));
      a.push(await time(allocated));
    }
  }
  console.log(`${rows} rows: process CPU per step, allocated ${median(a).toFixed(0)} µs, preallocated ${median(b).toFixed(0)} µs, allocated/preallocated per round ${median(a.map((x, i) => x / b[i])).toFixed(2)}`);
}
await session.release();
await model.release();
