// The model folder's tokenizer (tokenizer.json + tokenizer_config.json), ids as numbers.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { IrisError } from '../src/contract/types.ts';

export class TextTokenizer {
  private readonly specialIds: ReadonlySet<number>;

  private constructor(
    private readonly tokenizer: Tokenizer,
    specialIds: number[],
    readonly vocabSize: number,
  ) {
    this.specialIds = new Set(specialIds);
  }

  static async load(dir: string): Promise<TextTokenizer> {
    const [json, config] = await Promise.all([readJson(join(dir, 'tokenizer.json')), readJson(join(dir, 'tokenizer_config.json'))]);
    return TextTokenizer.fromJson(json, config);
  }

  static fromJson(json: Record<string, unknown>, config: Record<string, unknown>): TextTokenizer {
    const tokenizer = new Tokenizer(json, config);
    const added = Array.isArray(json.added_tokens) ? (json.added_tokens as { id: number; special?: boolean }[]) : [];
    const specialIds = added.filter((t) => t.special).map((t) => t.id);
    const vocab = tokenizer.get_vocab(true);
    const vocabSize = Math.max(...vocab.values()) + 1;
    return new TextTokenizer(tokenizer, specialIds, vocabSize);
  }

  /** Text → ids, without any special tokens added around it (the prompt builder adds them). */
  encode(text: string): Int32Array {
    return Int32Array.from(this.tokenizer.encode(text, { add_special_tokens: false }).ids);
  }

  /** Ids → text; special tokens are skipped unless asked for. */
  decode(ids: ArrayLike<number>, options: { skipSpecial?: boolean } = {}): string {
    if (ids.length === 0) return ''; // the library rejects an empty list
    return this.tokenizer.decode(Array.from(ids), { skip_special_tokens: options.skipSpecial ?? true });
  }

  /** The text of one token on its own (special tokens shown), for logprob listings. */
  tokenText(id: number): string {
    return this.tokenizer.decode([id], { skip_special_tokens: false });
  }

  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new IrisError('MODEL_NOT_FOUND', `cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
