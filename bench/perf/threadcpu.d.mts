// Types for threadcpu.mjs (plain JavaScript: the probe preloads it into eval'd worker code,
// where no TypeScript loader is registered yet).
/** CPU ns used by the calling thread so far. */
export declare const threadCpuNs: () => number;
/** The calling thread's kernel id (matches /proc/PID/task/TID). */
export declare const tid: () => number;
/** Kernel ids of libuv's threadpool threads (only with threadcpu.node; else []). */
export declare function poolTids(jobs?: number, sleepUs?: number): Promise<number[]>;
/** Which clock is in use. */
export declare const source: string;
