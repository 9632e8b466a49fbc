// Incremental detokenization: text arrives token by token, never half a character.
//
// Decoding one token alone is wrong for most tokenizers (leading spaces, byte-level BPE
// pieces of a multi-byte character, WordPiece cleanup gluing "a ," into "a,"). So, like
// text-generation-inference, decode a small window twice — with and without the newest
// tokens — and emit the difference once it no longer ends in U+FFFD.

export interface Decoder {
  decode(ids: ArrayLike<number>): string;
}

export class IncrementalDetokenizer {
  private readonly ids: number[] = [];
  private prefixOffset = 0; // window start: context for spacing, already emitted
  private readOffset = 0; // tokens before this have been emitted
  private emittedText = '';
  private readonly numContext: number;

  /**
   * `context`: tokens the text continues (a prompt being continued), decoded with the
   * first generated tokens so the text starts as it would inside the whole (" circle"
   * after "a small red"), never emitted themselves.
   */
  constructor(
    private readonly decoder: Decoder,
    context: ArrayLike<number> = [],
  ) {
    this.ids.push(...Array.from(context));
    this.numContext = this.ids.length;
    this.readOffset = this.numContext;
  }

  /** Add a token; returns the new text it completes ('' while a character is still partial). */
  push(id: number): string {
    this.ids.push(id);
    const prefixText = this.decoder.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const fullText = this.decoder.decode(this.ids.slice(this.prefixOffset));
    if (fullText.length <= prefixText.length || fullText.endsWith('\uFFFD') || !fullText.startsWith(prefixText)) return '';
    const delta = fullText.slice(prefixText.length);
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    this.emittedText += delta;
    return delta;
  }

  /** Whatever the window still holds back, once generation has ended. */
  flush(): string {
    const whole = this.decoder.decode(this.ids);
    const context = this.decoder.decode(this.ids.slice(0, this.numContext));
    const text = whole.startsWith(context) ? whole.slice(context.length) : this.decoder.decode(this.ids.slice(this.numContext));
    if (!text.startsWith(this.emittedText)) return '';
    const rest = text.slice(this.emittedText.length);
    this.emittedText = text;
    this.readOffset = this.ids.length;
    return rest;
  }

  get text(): string {
    return this.emittedText;
  }
}
