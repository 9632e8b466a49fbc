// The continuous-batching engine: every step is schedule → propose drafts → run →
// postprocess → emit. Requests join the running batch as soon as their image is encoded
// and the budget allows, and leave it the step they finish. Aborts (client gone,
// timeout) are queued and applied between steps, never mid-forward; they release the
// row, its KV and its image.
import { IrisError, type GenerateHooks, type GenerationDelta, type GenerationRequest, type GenerationResult, type Generator, type SpeculativeMode, type TokenAttention } from '../contract/types.ts';
import { tokenAttention } from '../../fusion/attention.ts';
import type { IrisModel } from '../model/load.ts';
import type { ImageLoader } from '../../vision/image-loader.ts';
import type { ModelRunner, RunnerPlan, RunnerResult } from './plan.ts';
import { EngineRequest, RequestStatus } from './request.ts';
import { rowSpecOf } from './row-spec.ts';
import type { Scheduler, SchedulerOutput } from './scheduler.ts';
import type { PrefixCache, PrefixCacheStats } from './prefix-cache.ts';
import type { Proposal, Speculator } from './speculator.ts';
import type { EmbeddingCacheStats } from '../../vision/embedding-cache.ts';
import type { SharedCacheStats } from './shared-embeddings.ts';
import { resultKeyOf, type CachedResult, type ResultCache, type ResultCacheStats } from './result-cache.ts';
import { SingleFlight } from './single-flight.ts';
import type { RowSpec } from './row-decoder.ts';

/** Image embedding lookups: the local LRU, and the shared second level when there is one. */
export interface EmbeddingCacheReport {
  readonly local: EmbeddingCacheStats;
  readonly shared?: SharedCacheStats;
}

/** What an engine reports to /metrics and the models query, read at scrape time. */
export interface EngineStats {
  readonly queueDepth: number;
  readonly batchSize: number;
  readonly kvUsedTokens: number;
  readonly kvCapacityTokens: number;
  /** Joint models with a prefix cache. */
  readonly prefixCache?: PrefixCacheStats;
  readonly embeddingCache?: EmbeddingCacheReport;
  /** Whole results of deterministic requests, when the engine keeps them. */
  readonly resultCache?: ResultCacheStats;
}

/** One step, as seen from outside (tests, benchmarks). */
export interface StepInfo {
  readonly numDecode: number;
  readonly numPrefill: number;
  readonly numPreempted: number;
  readonly numRetired: number;
  /** Slots the scheduler accounted for, and slots the runner's cache really holds. */
  readonly kvScheduledTokens: number;
  readonly kvCachedTokens: number;
  readonly runMs: number;
}

export interface EngineParts {
  readonly model: IrisModel;
  readonly loader: ImageLoader;
  readonly runner: ModelRunner;
  readonly scheduler: Scheduler<EngineRequest>;
  readonly kvCapacityTokens: number;
  /** Reported as each result's `model`. */
  readonly modelId?: string;
  /** Speculative decoding; absent: never. */
  readonly speculator?: Speculator;
  /** Image prefixes of joint models (the runner reads and fills it; the engine reports it). */
  readonly prefixCache?: PrefixCache;
  /** The embedding caches' counters, read at scrape time. */
  readonly embeddingCache?: () => EmbeddingCacheReport;
  /** Results of deterministic requests (greedy, or sampling with a seed): a repeated one is answered without the model. */
  readonly resultCache?: ResultCache;
  readonly onStep?: (info: StepInfo) => void;
}

export class Engine implements Generator {
  readonly modelId: string;
  private readonly requests = new Map<number, EngineRequest>();
  private readonly aborts = new Set<EngineRequest>();
  private nextId = 1;
  private isLooping = false;
  private idleWaiters: (() => void)[] = [];
  /** Identical deterministic requests in flight (keyed like the result cache) share one answer. */
  private readonly flights: SingleFlight;

  constructor(private readonly parts: EngineParts) {
    this.modelId = parts.modelId ?? parts.model.folder.id;
    this.flights = new SingleFlight(this.modelId);
  }

  get model(): IrisModel {
    return this.parts.model;
  }

  /**
   * Aborting before the first token rejects with CANCELLED; later, the partial text comes
   * back with finishReason 'cancelled'. A deterministic request may be answered from the
   * result cache: the same deltas, then the same result, with timings.resultCached; or,
   * while an identical one is being answered, share that answer (timings.resultShared;
   * single-flight.ts).
   */
  generate(request: GenerationRequest, hooks: GenerateHooks = {}): Promise<GenerationResult> {
    const arrivedAt = performance.now();
    if (hooks.signal?.aborted) return Promise.reject(EngineRequest.cancelledError());
    const { model, resultCache } = this.parts;
    let spec: RowSpec;
    let mode: SpeculativeMode;
    let key: string | undefined;
    try {
      spec = rowSpecOf(model, request);
      mode = spec.options.attention ? attentionMode(model, spec.options.speculative) : (this.parts.speculator?.modeOf(spec.options.speculative, !spec.options.isSampling) ?? 'off');
      key = resultCache ? resultKeyOf(request, spec.options) : undefined;
    } catch (error) {
      return Promise.reject(error);
    }
    if (!resultCache || key === undefined) return this.start(request, spec, mode, hooks, arrivedAt);
    return this.flights.run(key, hooks, arrivedAt, (shared) => this.cachedOrFresh(resultCache, key, request, spec, mode, shared, arrivedAt));
  }

  private async cachedOrFresh(cache: ResultCache, key: string, request: GenerationRequest, spec: RowSpec, mode: SpeculativeMode, hooks: GenerateHooks, arrivedAt: number): Promise<GenerationResult> {
    const hit = await cache.get(key);
    if (hooks.signal?.aborted) throw EngineRequest.cancelledError();
    if (hit) return this.replay(hit, hooks, arrivedAt);
    const deltas: GenerationDelta[] = [];
    const onDelta = (delta: GenerationDelta): void => {
      deltas.push(delta);
      hooks.onDelta?.(delta);
    };
    const result = await this.start(request, spec, mode, { signal: hooks.signal, onDelta }, arrivedAt);
    if (result.finishReason !== 'cancelled') cache.set(key, { result, deltas });
    return result;
  }

  /** A cached result, streamed as it was produced; a consumer that throws is treated as gone. */
  private replay(hit: CachedResult, hooks: GenerateHooks, arrivedAt: number): GenerationResult {
    try {
      for (const delta of hit.deltas) hooks.onDelta?.(delta);
    } catch {
      throw EngineRequest.cancelledError();
    }
    const totalMs = performance.now() - arrivedAt;
    return {
      ...hit.result,
      model: this.modelId,
      timings: { queueMs: 0, imageEncodeMs: 0, imageCached: false, prefixCached: false, prefillMs: 0, decodeMs: 0, totalMs, resultCached: true },
    };
  }

  private start(request: GenerationRequest, spec: RowSpec, mode: SpeculativeMode, hooks: GenerateHooks, arrivedAt: number): Promise<GenerationResult> {
    const { signal } = hooks;
    if (signal?.aborted) return Promise.reject(EngineRequest.cancelledError());
    const { model, scheduler } = this.parts;
    let entry: EngineRequest;
    try {
      entry = new EngineRequest({ id: this.nextId++, spec, tokenizer: model.tokenizer, eosIds: model.folder.ids.eos, suppressedIds: model.folder.suppressIds, onDelta: hooks.onDelta, arrivedAt });
      scheduler.add(entry);
      this.parts.speculator?.add(entry.id, mode);
    } catch (error) {
      return Promise.reject(error);
    }
    const done = new Promise<GenerationResult>((resolve, reject) => (entry.settle = { resolve, reject }));
    this.requests.set(entry.id, entry);
    if (signal) {
      const onAbort = (): void => this.abort(entry);
      signal.addEventListener('abort', onAbort, { once: true });
      entry.detach = () => signal.removeEventListener('abort', onAbort);
    }
    void this.loadImage(entry, request.image);
    return done;
  }

  stats(): EngineStats {
    const { scheduler, kvCapacityTokens, prefixCache, embeddingCache, resultCache } = this.parts;
    return { queueDepth: scheduler.numWaiting, batchSize: scheduler.numRunning, kvUsedTokens: scheduler.kvUsedTokens, kvCapacityTokens, prefixCache: prefixCache?.stats(), embeddingCache: embeddingCache?.(), resultCache: resultCache ? { inflight: this.flights.stats(), ...resultCache.stats() } : undefined };
  }

  /** Resolves once no step is running or due (finished rows retired, their KV freed). */
  whenIdle(): Promise<void> {
    return this.isLooping ? new Promise((resolve) => this.idleWaiters.push(resolve)) : Promise.resolve();
  }

  /** Cancel everything still in the engine, let the current step end, free the model. */
  async release(): Promise<void> {
    for (const entry of this.requests.values()) this.abort(entry);
    await this.whenIdle();
    try {
      await this.parts.speculator?.release();
    } finally {
      await this.parts.model.release();
    }
  }

  private abort(entry: EngineRequest): void {
    if (entry.isDone) return;
    this.aborts.add(entry);
    this.wake();
  }

  private async loadImage(entry: EngineRequest, bytes: Uint8Array): Promise<void> {
    try {
      const lease = await this.parts.loader.load(bytes);
      if (entry.isDone) return lease.release(); // cancelled while its image was encoded
      entry.lease = lease;
      entry.readyAt = performance.now();
      this.parts.scheduler.markReady(entry);
      this.wake();
    } catch (error) {
      this.parts.scheduler.abort(entry);
      this.settle(entry, error instanceof IrisError ? error : new IrisError('BAD_IMAGE', String(error)));
    }
  }

  private wake(): void {
    if (this.isLooping) return;
    this.isLooping = true;
    setImmediate(() => void this.loop());
  }

  private async loop(): Promise<void> {
    try {
      while (this.aborts.size > 0 || this.parts.scheduler.hasWork) {
        try {
          await this.step();
        } catch (error) {
          this.failRunning(error instanceof Error ? error : new Error(String(error)));
        }
        // Between steps: let new requests, image loads and aborts in.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.isLooping = false;
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  async step(): Promise<void> {
    this.applyAborts();
    const scheduled = this.parts.scheduler.schedule();
    this.recordSchedule(scheduled);
    const proposals = await this.proposeDrafts(scheduled);
    const result = await this.run(scheduled, planOf(scheduled, proposals, this.parts.speculator));
    const finished = this.postprocess(result);
    this.emit(result.rowIds, finished);
  }

  /** Request bookkeeping for this step's schedule: preemption counts, first admission, caches rebuilt without drafts. */
  private recordSchedule(scheduled: SchedulerOutput<EngineRequest>): void {
    const now = performance.now();
    for (const entry of scheduled.preempted) entry.numPreemptions++;
    for (const entry of scheduled.prefill) {
      entry.firstScheduledAt ||= now;
      this.parts.speculator?.restart(entry.id);
    }
  }

  private proposeDrafts(scheduled: SchedulerOutput<EngineRequest>): Promise<ReadonlyMap<number, Proposal>> {
    const { speculator, kvCapacityTokens } = this.parts;
    if (!speculator || scheduled.decode.length === 0) return Promise.resolve(new Map());
    const rows = scheduled.decode.map((entry) => ({ id: entry.id, row: entry.row, embedding: entry.lease!.embedding, maxTokens: entry.maxTokens, numTokens: entry.numTokens }));
    return speculator.propose(rows, kvCapacityTokens - scheduled.numKvTokens);
  }

  private async run(scheduled: SchedulerOutput<EngineRequest>, plan: RunnerPlan): Promise<RunnerResult> {
    const started = performance.now();
    const result = await this.parts.runner.execute(plan);
    this.parts.onStep?.({
      numDecode: plan.decode.length,
      numPrefill: plan.prefill.length,
      numPreempted: scheduled.preempted.length,
      numRetired: plan.retire.length,
      kvScheduledTokens: scheduled.numKvTokens,
      kvCachedTokens: result.numCachedTokens,
      runMs: performance.now() - started,
    });
    return result;
  }

  /** Sample each row's token (or judge its drafts); rows that finished leave the scheduler (and the batch, next step). */
  private postprocess(result: RunnerResult): EngineRequest[] {
    const { rowIds, logits, vocabSize, numPositions, headLogits } = result;
    const { speculator } = this.parts;
    const now = performance.now();
    const finished: EngineRequest[] = [];
    for (const id of result.prefixCached ?? []) this.requests.get(id)!.isPrefixCached = true;
    let position = 0;
    // The heads' logits per position ([heads, vocab]), when the step ran the Medusa graph.
    const perPosition = headLogits ? headLogits.length / (logits.length / vocabSize) : 0;
    rowIds.forEach((id, i) => {
      const entry = this.requests.get(id)!;
      const isFirst = entry.firstTokenAt === 0;
      const count = numPositions?.[i] ?? 1;
      const rowLogits = logits.subarray(position * vocabSize, (position + count) * vocabSize);
      const rowHeads = headLogits ? headLogits.subarray(position * perPosition, (position + count) * perPosition) : undefined;
      position += count;
      const isLive = entry.wantsAttention
        ? entry.row.accept(rowLogits, this.attentionOf(result, i, entry))
        : speculator
          ? speculator.judge(id, entry.row, rowLogits, vocabSize, rowHeads)
          : entry.row.accept(rowLogits);
      if (isFirst) {
        entry.firstTokenAt = now;
        entry.prefillMs = result.prefillMs;
      }
      if (!isLive) {
        this.parts.scheduler.finish(entry);
        finished.push(entry);
      }
    });
    return finished;
  }

  /**
   * Row i's attention over the image: cross-attention's keys are the patches; a joint
   * model's self-attention keys are the row's sequence, whose image tokens come first.
   */
  private attentionOf(result: RunnerResult, i: number, entry: EngineRequest): TokenAttention {
    const { data, numLayers, numHeads, numKeys, firstKey } = result.attention!;
    const per = numLayers * numHeads * numKeys;
    const numPatches = entry.lease!.embedding.numPatches;
    const isJoint = this.parts.model.folder.family.kind === 'joint';
    const row = { data: data.subarray(i * per, (i + 1) * per), numLayers, numHeads, numKeys, imageStart: isJoint ? firstKey[i] : 0, numPatches, hasTextKeys: isJoint };
    return tokenAttention(row, this.parts.model.folder.attentionAggregation);
  }

  /** Hand out deltas, then settle finished requests. A consumer that throws is treated as gone. */
  private emit(rowIds: readonly number[], finished: readonly EngineRequest[]): void {
    for (const id of rowIds) {
      const entry = this.requests.get(id);
      if (entry) this.flushDeltas(entry);
    }
    for (const entry of finished) this.settle(entry);
  }

  private flushDeltas(entry: EngineRequest): void {
    const deltas = entry.outbox.splice(0);
    try {
      for (const delta of deltas) entry.onDelta?.(delta);
    } catch {
      this.abort(entry);
    }
  }

  private applyAborts(): void {
    for (const entry of this.aborts) {
      if (entry.isDone) continue;
      const previous = this.parts.scheduler.abort(entry);
      if (previous === RequestStatus.Finished) continue;
      if (entry.numGenerated > 0) entry.row.finish('cancelled');
      this.flushDeltas(entry);
      this.settle(entry);
    }
    this.aborts.clear();
  }

  /** Resolve or reject once, and release what the request held. */
  private settle(entry: EngineRequest, error?: Error): void {
    if (!this.requests.delete(entry.id)) return;
    entry.detach?.();
    const settle = entry.settle!;
    // A finished request has a result even when its first token was EOS; a cancelled one only if it produced text.
    const hasResult = error === undefined && (entry.status === RequestStatus.Finished || entry.numGenerated > 0);
    const speculation = this.parts.speculator?.remove(entry.id);
    const result = hasResult ? entry.toResult(this.modelId, performance.now(), speculation) : undefined;
    entry.lease?.release();
    if (result) settle.resolve(result);
    else settle.reject(error ?? EngineRequest.cancelledError());
  }

  private failRunning(error: Error): void {
    this.parts.runner.reset();
    this.parts.speculator?.reset();
    for (const entry of [...this.requests.values()]) {
      if (entry.status !== RequestStatus.Running && entry.status !== RequestStatus.Preempted) continue;
      this.parts.scheduler.abort(entry);
      this.settle(entry, error);
    }
  }
}

/** The runner's plan for this step: who leaves, who decodes (with their drafts), who joins. */
function planOf(scheduled: SchedulerOutput<EngineRequest>, proposals: ReadonlyMap<number, Proposal>, speculator: Speculator | undefined): RunnerPlan {
  const prefill = scheduled.prefill.map((entry) => {
    if (!entry.lease) throw new Error(`request ${entry.id} was admitted without its image`);
    return { id: entry.id, tokenIds: entry.prefillIds(), embedding: entry.lease.embedding, imageKey: entry.lease.key };
  });
  const decode = scheduled.decode.map((entry) => {
    const proposal = proposals.get(entry.id);
    const drafts = proposal?.drafts ?? [];
    return {
      id: entry.id,
      tokenId: entry.row.lastId,
      draftIds: drafts.length > 0 ? Int32Array.from(drafts, (d) => d.id) : undefined,
      numRejected: proposal?.numRejected ?? 0,
    };
  });
  const rows = [...scheduled.decode, ...scheduled.prefill];
  // Attention outweighs heads: a Medusa row in a step with maps gets no guesses and decodes plainly next step.
  const graph = rows.some((e) => e.wantsAttention) ? 'attention' : speculator?.wantsHeads(rows.map((e) => e.id)) ? 'heads' : 'plain';
  return { retire: scheduled.retire, decode, prefill, graph };
}

/** Attention maps come from plain decoder steps: a request that asks for them does not speculate. */
function attentionMode(model: IrisModel, speculative: SpeculativeMode | undefined): SpeculativeMode {
  if (!model.attentionRunner) throw new IrisError('ATTENTION_UNAVAILABLE', `model '${model.folder.id}' has no attentions variant (onnx/decoder_with_attentions_model_merged.onnx); export one with training/export.py, which writes it beside the decoder`);
  if (speculative !== undefined && speculative !== 'off') throw new IrisError('INVALID_OPTIONS', `attention cannot be combined with speculative decoding ('${speculative}'): leave speculative unset or 'off'`);
  return 'off';
}
