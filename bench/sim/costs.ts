// The measured inputs of the simulation, each with where it was measured. Nothing here is
// a guess except what says "assumption".
//
// Per-request CPU: /work/shared/perf/results/eC.json (shapes-base, `mix` tasks, at most
// 24 new tokens, 5.1 tokens per request on average, config b32 = max batch 32, one Iris
// process on this 2-core machine), three rounds each:
//   concurrency 1:  cpuMsPerRequest.total 12.76, 11.77, 10.92 → mean 11.82 ms
//   concurrency 32: cpuMsPerRequest.total  9.57,  8.93,  8.71 → mean  9.07 ms
//   encoder (the part an embedding-cache hit saves): ort.encoder 1.41, 1.42, 1.36 → 1.40 ms
// The README's `bench:steps` figures agree: encode 1.6 ms/image, decode step 0.29 ms alone.
// Redis GET of a 32 KB embedding: 0.11–0.57 ms (scale-out.md §3.3) → 0.3 ms.
// Cluster events (scale-out.md §4, 3 replicas, HAProxy 2.6): health check inter 500 ms ×
// fall 2 = 1 s to take a replica out; drain trial delay 1.5 s, timeout 20 s; time to
// /ready 2–3 s warm, 31 s cold.

export const COSTS = {
  source: '/work/shared/perf/results/eC.json (b32, rounds 1-3) and /work/shared/docs/scale-out.md §3.3, §4',
  cpuMsAlone: (12.76 + 11.77 + 10.92) / 3,
  cpuMsBatched: (9.57 + 8.93 + 8.71) / 3,
  batchedAt: 32,
  encoderMs: (1.41 + 1.42 + 1.36) / 3,
  redisGetMs: 0.3,
  checkDetectS: 0.5 * 2,
  drainDelayS: 1.5,
  drainTimeoutS: 20,
  readyWarmS: 3,
  readyColdS: 31,
  /** Bytes of one shapes-base embedding (64×128 float32, scale-out.md §3.3). */
  embeddingBytes: 32 * 1024,
} as const;

/** Iris's defaults and the manifests' values the simulation uses. */
export const DEPLOY = {
  maxBatchSize: 32,
  maxQueued: 64,
  embeddingCacheBytes: 64 * 1024 * 1024,
  redisMaxBytes: 256 * 1024 * 1024,
  /** deploy/k8s/scaledobject.yaml */
  kedaPollS: 15,
  kedaThreshold: 8,
  /** deploy/k8s/iris.yaml: requests.cpu */
  coresPerReplica: 1,
} as const;

/** CPU ms of one request of unit size when n rows run together (linear between the two measurements). */
export function cpuMsPerRequest(n: number): number {
  const f = Math.min(1, Math.max(0, (n - 1) / (COSTS.batchedAt - 1)));
  return COSTS.cpuMsAlone + (COSTS.cpuMsBatched - COSTS.cpuMsAlone) * f;
}
