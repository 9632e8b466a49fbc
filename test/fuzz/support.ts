// What every fuzzed answer must satisfy: no 5xx, no internal error, and every code one
// the README's "Error codes" table documents.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { ROOT } from '../helpers.ts';

/** The codes in the first column of README.md's "Error codes" table. */
export function documentedCodes(): Set<string> {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Error codes'));
  const table = section.split('\n').filter((line) => line.startsWith('| `'));
  const codes = new Set<string>();
  for (const row of table) for (const m of row.split('|')[1].matchAll(/`([A-Z_]+)`/g)) codes.add(m[1]);
  return codes;
}

export const DOCUMENTED = documentedCodes();

export interface Answer {
  readonly status: number;
  readonly text: string;
}

/** Codes of a JSON GraphQL answer (an empty body, e.g. 404, has none). */
export function codesOf(text: string): string[] {
  if (text.trim() === '') return [];
  let body: { errors?: Array<{ extensions?: { code?: unknown } }> };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    return ['(not JSON)'];
  }
  return (body.errors ?? []).map((e) => String(e.extensions?.code ?? '(no code)'));
}

/** Asserts the answer is one a client may get: documented codes only, never an internal error or a 5xx (503 OVERLOADED/SHUTTING_DOWN aside). */
export function expectDocumented(answer: Answer, input: string): void {
  const codes = codesOf(answer.text);
  const context = `${input.slice(0, 300)} -> ${answer.status} ${answer.text.slice(0, 300)}`;
  expect(answer.status === 503 ? codes.every((c) => c === 'OVERLOADED' || c === 'SHUTTING_DOWN') : answer.status < 500, context).toBe(true);
  for (const code of codes) {
    expect(code, context).not.toBe('INTERNAL_SERVER_ERROR');
    expect(DOCUMENTED.has(code), `${code} undocumented: ${context}`).toBe(true);
  }
}
