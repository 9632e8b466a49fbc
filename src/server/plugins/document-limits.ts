// Bounds on a document checked before and while it is parsed, so no document can make
// the parser (or the validation and execution that recurse over its tree) overflow the
// stack or run long: graphql-js's parser recurses once per nesting level (about 5,000
// levels of fields, inline fragments or list literals overflow it, a 30 KB request), and
// its `maxTokens` stops a long document early. The nesting scan is one pass over the text.
import { GraphQLError, parse, type DocumentNode, type ParseOptions, type Source } from 'graphql';
import type { Plugin } from 'graphql-yoga';

export interface DocumentLimits {
  /** Lexical tokens of a document (a string literal, however long, is one). */
  readonly tokens: number;
  /** Brackets open at once: `{` of selections and objects, `[` of lists, `(` of arguments. */
  readonly nesting: number;
}

/** The nesting cap for a selection-depth limit: a level takes a `{` (plus inline fragments, arguments, objects). */
export function nestingFor(queryDepth: number): number {
  return 2 * queryDepth + 32;
}

function limitError(code: string, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code, http: { status: 400, spec: false } } });
}

const OPEN = new Set(['{', '[', '(']);
const CLOSE = new Set(['}', ']', ')']);

/** The deepest bracket nesting outside strings and comments, or limit + 1 as soon as it is passed. */
export function nestingDepth(text: string, limit: number): number {
  let depth = 0;
  let max = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '#') {
      while (i < text.length && text[i] !== '\n' && text[i] !== '\r') i++;
    } else if (c === '"') {
      if (text.startsWith('"""', i)) {
        i += 3;
        while (i < text.length && !text.startsWith('"""', i)) i += text.startsWith('\\"""', i) ? 4 : 1;
        i += 2;
      } else {
        i++;
        while (i < text.length && text[i] !== '"' && text[i] !== '\n') i += text[i] === '\\' ? 2 : 1;
      }
    } else if (OPEN.has(c)) {
      depth++;
      if (depth > max) max = depth;
      if (max > limit) return max;
    } else if (CLOSE.has(c)) {
      depth--;
    }
  }
  return max;
}

export function parseBounded(source: string | Source, limits: DocumentLimits, options?: ParseOptions): DocumentNode {
  const text = typeof source === 'string' ? source : source.body;
  if (nestingDepth(text, limits.nesting) > limits.nesting) {
    throw limitError('QUERY_TOO_DEEP', `the document nests brackets more than ${limits.nesting} deep`);
  }
  try {
    return parse(source, { ...options, maxTokens: limits.tokens });
  } catch (error) {
    if (error instanceof GraphQLError && /tokens\. Parsing aborted/.test(error.message)) {
      throw limitError('QUERY_TOO_LARGE', `the document has more than ${limits.tokens} tokens`);
    }
    throw error;
  }
}

/** Every parse (HTTP and WebSocket alike, both go through yoga's envelop) is bounded. */
export function useDocumentLimits(limits: DocumentLimits): Plugin {
  return {
    onParse({ setParseFn }) {
      setParseFn((source, options) => parseBounded(source, limits, options));
    },
  };
}
