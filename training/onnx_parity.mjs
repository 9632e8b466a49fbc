// onnxruntime (Node) vs PyTorch on an exported LLaVA-layout folder (export_joint.py).
//
// usage: node onnx_parity.mjs MODEL_DIR PARITY_JSON
//
// Runs every case of PARITY_JSON (written by export_joint.py --parity) through the four
// ONNX files with a plain greedy loop at batch 1 and a KV cache, exactly the feeds
// transformers.js gives them (vlm-layout-llava.md 4.4), then all cases as one left-padded
// batch (the real mask kept, positions per row), and records under
// "pytorch_vs_onnxruntime" whether the greedy ids equal PyTorch's and the largest absolute
// difference of the logits over every greedy step; also that the attention-variant decoder
// gives the same logits and that its decoder_attentions rows sum to 1, and whether the
// padded batch's rows equal PyTorch's batch-1 runs. Exits 1 on any token mismatch. It is also the reference for the feeds Iris's engine has to build.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import ort from 'onnxruntime-node';

const [dir, parityPath] = process.argv.slice(2);
if (!dir || !parityPath) {
  console.error('usage: node onnx_parity.mjs MODEL_DIR PARITY_JSON');
  process.exit(2);
}
const parity = JSON.parse(readFileSync(parityPath, 'utf8'));
const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
const pre = JSON.parse(readFileSync(join(dir, 'preprocessor_config.json'), 'utf8'));
const text = config.text_config;
const L = text.num_hidden_layers;
const KV = text.num_key_value_heads;
const HD = text.head_dim;
const D = text.hidden_size;
const S = parity.image_size;

const opts = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' };
const load = (name) => ort.InferenceSession.create(join(dir, 'onnx', name), opts);
const [vision, embed, decoder, decoderAttn] = await Promise.all(
  ['vision_encoder.onnx', 'embed_tokens.onnx', 'decoder_model_merged.onnx', 'decoder_with_attentions_model_merged.onnx'].map(load));

const i64 = (values, dims) => new ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), dims);

/** HWC uint8 at the input size -> [1, 3, S, S] float32: fround(x / 255), then (x - mean) / std. */
function pixelValues(b64) {
  const hwc = Buffer.from(b64, 'base64');
  const out = new Float32Array(3 * S * S);
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < S * S; p++) {
      const x = Math.fround(hwc[p * 3 + c] * pre.rescale_factor);
      out[c * S * S + p] = Math.fround(Math.fround(x - pre.image_mean[c]) / pre.image_std[c]);
    }
  }
  return new ort.Tensor('float32', out, [1, 3, S, S]);
}

/**
 * Greedy over a batch of cases, left-padded to the longest prompt (batch 1 = one case): the
 * feeds an engine builds. Returns per row the ids (EOS included when it stops) and each
 * step's last-position logits, and the largest |row sum - 1| of decoder_attentions.
 */
async function greedy(session, cases, withAttentions) {
  const B = cases.length;
  const P = Math.max(...cases.map((c) => c.input_ids.length));
  const pixels = cases.map((c) => pixelValues(c.image_uint8_hwc).data);
  const px = new Float32Array(B * pixels[0].length);
  pixels.forEach((p, b) => px.set(p, b * p.length));
  const { image_features } = await vision.run({ pixel_values: new ort.Tensor('float32', px, [B, 3, S, S]) });
  const N = image_features.dims[1];
  const ids = [];
  const mask = [];
  const pos = [];
  for (const c of cases) {
    const pad = P - c.input_ids.length;
    ids.push(...new Array(pad).fill(0), ...c.input_ids);
    mask.push(...new Array(pad).fill(0), ...new Array(c.input_ids.length).fill(1));
    pos.push(...new Array(pad).fill(1), ...c.input_ids.map((_, j) => j)); // cumsum(mask) - 1, pads at 1
  }
  const { inputs_embeds } = await embed.run({ input_ids: i64(ids, [B, P]) });
  const x = new Float32Array(inputs_embeds.data);
  // the LLaVA merge: in each row, the k-th <image> row gets that image's feature row k
  for (let b = 0; b < B; b++) {
    let k = 0;
    for (let t = 0; t < P; t++) {
      if (ids[b * P + t] !== parity.image_token_id) continue;
      x.set(image_features.data.subarray((b * N + k) * D, (b * N + k + 1) * D), (b * P + t) * D);
      k++;
    }
    if (k !== N) throw new Error(`row ${b}: tokens: ${k}, features ${N}`);
  }
  let feeds = { inputs_embeds: new ort.Tensor('float32', x, [B, P, D]), position_ids: i64(pos, [B, P]) };
  let past = {};
  for (let i = 0; i < L; i++) {
    for (const kv of ['key', 'value']) past[`past_key_values.${i}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [B, KV, 0, HD]);
  }
  const attention = [...mask];
  let lastPos = cases.map((c) => c.input_ids.length - 1);
  const out = cases.map(() => []);
  const steps = cases.map(() => []);
  const done = cases.map(() => false);
  let rowSumError = 0;
  for (let step = 0; step < parity.max_new_tokens && !done.every(Boolean); step++) {
    const seq = feeds.inputs_embeds.dims[1];
    const length = attention.length / B;
    const result = await session.run({ ...feeds, attention_mask: i64(attention, [B, length]), ...past });
    const V = result.logits.dims[2];
    const next = [];
    for (let b = 0; b < B; b++) {
      const last = Array.from(result.logits.data.subarray(((b + 1) * seq - 1) * V, (b + 1) * seq * V));
      let best = -1;
      for (let v = 0; v < V; v++) {
        if (parity.suppress_tokens.includes(v)) continue;
        if (best < 0 || last[v] > last[best]) best = v;
      }
      next.push(done[b] ? parity.eos_token_id : best);
      if (done[b]) continue;
      steps[b].push(last);
      out[b].push(best);
      if (best === parity.eos_token_id) done[b] = true;
    }
    if (withAttentions) {
      for (let i = 0; i < L; i++) {
        const a = result[`decoder_attentions.${i}`];
        const kvLen = a.dims[3];
        for (let r = 0; r < a.data.length / kvLen; r++) {
          let sum = 0;
          for (let j = 0; j < kvLen; j++) sum += a.data[r * kvLen + j];
          rowSumError = Math.max(rowSumError, Math.abs(sum - 1));
        }
      }
    }
    past = {};
    for (let i = 0; i < L; i++) {
      for (const kv of ['key', 'value']) past[`past_key_values.${i}.${kv}`] = result[`present.${i}.${kv}`];
    }
    // the mask keeps its pad zeros and gains a 1 per row; each row's position advances by one
    const grown = [];
    for (let b = 0; b < B; b++) grown.push(...attention.slice(b * length, (b + 1) * length), 1);
    attention.splice(0, attention.length, ...grown);
    lastPos = lastPos.map((p) => p + 1);
    const { inputs_embeds: e } = await embed.run({ input_ids: i64(next, [B, 1]) });
    feeds = { inputs_embeds: e, position_ids: i64(lastPos, [B, 1]) };
  }
  return { ids: out, steps, rowSumError };
}

let maxDiff = 0;
let maxAttnVsPlain = 0;
let rowSumError = 0;
const mismatches = [];
let attnIdsEqual = true;
const logitsDiff = (a, b) => {
  let m = 0;
  for (let s = 0; s < Math.min(a.length, b.length); s++) for (let v = 0; v < a[s].length; v++) m = Math.max(m, Math.abs(a[s][v] - b[s][v]));
  return m;
};
for (const [n, c] of parity.cases.entries()) {
  const plain = await greedy(decoder, [c], false);
  const attn = await greedy(decoderAttn, [c], true);
  if (JSON.stringify(plain.ids[0]) !== JSON.stringify(c.greedy_ids)) mismatches.push({ case: n, pytorch: c.greedy_ids, onnxruntime: plain.ids[0] });
  if (JSON.stringify(attn.ids[0]) !== JSON.stringify(plain.ids[0])) attnIdsEqual = false;
  maxDiff = Math.max(maxDiff, logitsDiff(plain.steps[0], c.step_logits));
  maxAttnVsPlain = Math.max(maxAttnVsPlain, logitsDiff(plain.steps[0], attn.steps[0]));
  rowSumError = Math.max(rowSumError, attn.rowSumError);
}
// every case in one left-padded batch (own loop, real mask): each row must equal PyTorch's batch-1 run
const batch = await greedy(decoder, parity.cases, false);
const batchMismatches = parity.cases.filter((c, n) => JSON.stringify(batch.ids[n]) !== JSON.stringify(c.greedy_ids)).length;
const batchDiff = Math.max(...parity.cases.map((c, n) => logitsDiff(batch.steps[n], c.step_logits)));
const version = createRequire(import.meta.url)('onnxruntime-node/package.json').version;
parity.pytorch_vs_onnxruntime = {
  runtime: `onnxruntime-node ${version}, batch 1, KV cache, fp32`,
  cases: parity.cases.length,
  greedy_ids_equal: mismatches.length === 0,
  mismatches,
  max_abs_logits_diff: Number(maxDiff.toPrecision(3)),
  logits_note: 'PyTorch logits are stored rounded to 6 decimals',
  attentions_variant: { greedy_ids_equal: attnIdsEqual, max_abs_logits_diff_vs_plain: maxAttnVsPlain,
    max_abs_attention_row_sum_error: Number(rowSumError.toPrecision(3)) },
  left_padded_batch: { rows: parity.cases.length, greedy_ids_equal: batchMismatches === 0,
    max_abs_logits_diff: Number(batchDiff.toPrecision(3)) },
};
writeFileSync(parityPath, JSON.stringify(parity));
console.log(JSON.stringify(parity.pytorch_vs_onnxruntime));
if (mismatches.length || !attnIdsEqual || batchMismatches) process.exit(1);
