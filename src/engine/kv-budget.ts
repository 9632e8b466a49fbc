// KV-cache budget accounting in cached tokens, on plain integers (no tensors, no model).
//
// The batched cache is dense and left-padded: after a step every row spans the batch's
// width, which is the longest row's length (the runner trims columns no row attends to).
// So a batch of n rows whose longest row holds L tokens occupies n × L self-attention
// slots, padding included, plus n × crossTokensPerRow when the model carries
// cross-attention keys/values as past (encoder-decoder naming: one slot per image patch).
// Counting the padding is deliberate: it is memory the cache really holds.

export interface KvBudgetOptions {
  /** Most token slots the cache may hold (self + cross, padding included). */
  readonly capacityTokens: number;
  /** Cross-attention slots each row carries (image patches), 0 for GPT-2-style caches. */
  readonly crossTokensPerRow: number;
}

export class KvBudget {
  readonly capacityTokens: number;
  readonly crossTokensPerRow: number;

  constructor(options: KvBudgetOptions) {
    const { capacityTokens, crossTokensPerRow } = options;
    if (!Number.isInteger(capacityTokens) || capacityTokens < 1) {
      throw new RangeError(`capacityTokens must be an integer >= 1 (cached token slots), got ${capacityTokens}`);
    }
    if (!Number.isInteger(crossTokensPerRow) || crossTokensPerRow < 0) {
      throw new RangeError(`crossTokensPerRow must be an integer >= 0 (image patches carried as past), got ${crossTokensPerRow}`);
    }
    this.capacityTokens = capacityTokens;
    this.crossTokensPerRow = crossTokensPerRow;
  }

  /** Slots held by a batch whose rows hold these many tokens each. */
  footprint(rowTokens: readonly number[]): number {
    if (rowTokens.length === 0) return 0;
    let longest = 0;
    for (const n of rowTokens) longest = Math.max(longest, n);
    return rowTokens.length * (longest + this.crossTokensPerRow);
  }

  /** Slots one row of `numTokens` tokens needs when it runs alone. */
  rowFootprint(numTokens: number): number {
    return numTokens + this.crossTokensPerRow;
  }

  /** Query half of the query/commit pair: does this batch fit? */
  canHold(rowTokens: readonly number[]): boolean {
    return this.footprint(rowTokens) <= this.capacityTokens;
  }

  /** Could a single row ever reach `maxTokens` (prompt + max new tokens) within the budget? */
  canEverHold(maxTokens: number): boolean {
    return this.rowFootprint(maxTokens) <= this.capacityTokens;
  }
}
