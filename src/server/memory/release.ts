// Handing a burst's memory back to the system. Once request bodies worth at least a whole
// intake budget have passed since the last release, and the budget has then been idle for
// a second (no body being read, decoded or answered):
// 1. the main thread collects its garbage: V8 holds the bodies, base64 strings and pixels
//    as garbage but sees no reason to collect while the server is idle;
// 2. so does every image worker (collectWhenAsked): its copies of the image bytes and its
//    decoded pixels, 40-90 MB of mapped buffers after 40 concurrent 10 MB images;
// 3. half a second later, glibc's malloc_trim(0) (native/malloc-trim.node, on a threadpool
//    thread) hands the free pages inside every malloc arena back to the system: sharp's
//    decoders and Node's buffers freed 100-150 MB there, which free() keeps because it only
//    ever shrinks an arena from its top.
// 2 and 3 are the --release-memory setting (on by default); off, only 1 happens. Per
// request there is only a sum (and past the threshold, a timer set anew each time the budget
// goes idle); the work itself waits until the budget has stayed idle.
import { askThreadsToCollect, collectGarbage } from '../../contract/collect-garbage.ts';
import type { MallocTrim } from './malloc-trim.ts';

/** What became of malloc's free pages: returned, none to return, no addon, or --release-memory off. */
export type TrimOutcome = 'released' | 'nothing' | 'unavailable' | 'off';

export interface MemoryRelease {
  /** Request body bytes since the previous release. */
  readonly burstBytes: number;
  /** The process's RSS before the collections and after the trim. */
  readonly rssBeforeBytes: number;
  readonly rssAfterBytes: number;
  readonly trim: TrimOutcome;
}

export interface ReleaseOptions {
  /** Body bytes that must have passed since the last release (the intake budget). */
  readonly threshold: number;
  /** True while no request holds or waits for the budget. */
  readonly isIdle: () => boolean;
  /** The --release-memory setting: collect in the image workers too, and trim malloc's heap. */
  readonly enabled: boolean;
  /** malloc_trim, or undefined when the addon is not built. */
  readonly trim: MallocTrim | undefined;
  readonly onRelease?: (release: MemoryRelease) => void;
  /** Called once, the first time a trim was due and there was no addon. */
  readonly onUnavailable?: () => void;
}

/** How long the budget must stay idle after a burst before its memory is released. */
export const IDLE_MS = 1_000;
/** Between the collections and the trim: time for the workers' collections and V8's freeing of dead buffers. */
export const TRIM_AFTER_MS = 500;

/** The budget's onIdle: counts body bytes, and releases memory after a burst once idle (see above). */
export function releaseAfterBursts(options: ReleaseOptions): (bytes: number) => void {
  let pending = 0;
  let timer: NodeJS.Timeout | undefined;
  let isUnavailableReported = false;

  const trimmed = async (): Promise<TrimOutcome> => {
    if (!options.enabled) return 'off';
    if (!options.trim) {
      if (!isUnavailableReported) {
        isUnavailableReported = true;
        options.onUnavailable?.();
      }
      return 'unavailable';
    }
    return (await options.trim()) ? 'released' : 'nothing';
  };

  const release = (): void => {
    timer = undefined;
    // Busy again: the next time the budget is idle sets the timer anew (pending is kept).
    if (!options.isIdle()) return;
    const burstBytes = pending;
    pending = 0;
    const rssBeforeBytes = process.memoryUsage.rss();
    collectGarbage();
    if (options.enabled) askThreadsToCollect();
    setTimeout(() => {
      trimmed().then(
        (trim) => options.onRelease?.({ burstBytes, rssBeforeBytes, rssAfterBytes: process.memoryUsage.rss(), trim }),
        () => undefined,
      );
    }, TRIM_AFTER_MS).unref();
  };

  return (bytes) => {
    pending += bytes;
    if (pending < options.threshold) return;
    // Debounced: a second after the last time the budget went idle.
    clearTimeout(timer);
    timer = setTimeout(release, IDLE_MS);
    timer.unref();
  };
}
