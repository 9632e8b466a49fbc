// glibc's malloc_trim(0) through the native addon native/malloc-trim.node (built at install
// by bin/build-native.mjs from native/malloc-trim.c). Where it could not be built (no C
// compiler or Node headers at install, no glibc) Iris runs without it.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Hands the free pages inside every malloc arena back to the system, off the event loop; true if any were. */
export type MallocTrim = () => Promise<boolean>;

/** The addon's path: the repository's native/ folder (dist/native links to it). */
export const MALLOC_TRIM_ADDON = fileURLToPath(new URL('../../../native/malloc-trim.node', import.meta.url));

/** The addon's trim(), or undefined when the addon is not there or does not load. */
export function loadMallocTrim(path: string = MALLOC_TRIM_ADDON): MallocTrim | undefined {
  try {
    const addon = createRequire(import.meta.url)(path) as { trim?: unknown };
    return typeof addon.trim === 'function' ? (addon.trim as MallocTrim) : undefined;
  } catch {
    return undefined;
  }
}
