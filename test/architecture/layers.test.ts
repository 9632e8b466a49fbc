// The layout as a rule: each folder imports only the layers below it (the data path runs
// contract → vision/text → fusion → model → engine → server/schema → CLI), the inference
// core (vision/, text/, fusion/) sees nothing of src/ but the contract, and no file
// imports itself through others. Type-only imports count: they are dependencies too.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers.ts';

const FOLDERS = ['src/contract', 'src/config', 'src/model', 'src/quantize', 'src/engine', 'src/server', 'src/cli', 'vision', 'text', 'fusion', 'schema'] as const;
type Folder = (typeof FOLDERS)[number] | 'entry';

/** What each folder may import besides itself. server and schema are one layer (the API), split by file kind. */
const ALLOWED: Readonly<Record<Folder, readonly Folder[]>> = {
  'src/contract': [],
  vision: ['src/contract'],
  text: ['src/contract'],
  'src/config': ['src/contract'],
  fusion: ['src/contract', 'vision', 'text'],
  'src/quantize': ['src/contract'],
  'src/model': ['src/contract', 'src/config', 'src/quantize', 'vision', 'text', 'fusion'],
  'src/engine': ['src/contract', 'src/config', 'src/model', 'vision', 'text', 'fusion'],
  schema: ['src/contract', 'src/config', 'src/engine', 'src/server', 'text', 'vision'],
  'src/server': ['src/contract', 'src/config', 'src/model', 'src/engine', 'schema', 'vision', 'text', 'fusion'],
  'src/cli': ['src/contract', 'src/config', 'src/model', 'src/engine', 'src/quantize', 'vision', 'text', 'fusion'],
  entry: [...FOLDERS],
};

const ENTRY_POINTS = ['src/server.ts', 'src/cli.ts'];

function sourceFiles(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
  return [...ENTRY_POINTS, ...['src', 'vision', 'text', 'fusion', 'schema'].flatMap(walk).filter((f) => !ENTRY_POINTS.includes(f))];
}

function folderOf(file: string): Folder | undefined {
  if (ENTRY_POINTS.includes(file)) return 'entry';
  return [...FOLDERS].sort((a, b) => b.length - a.length).find((f) => file.startsWith(`${f}/`));
}

/** Relative imports of a file, as repository paths (static, dynamic and type-only). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const specs = [...text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]);
  return specs.map((s) => relative(ROOT, resolve(ROOT, dirname(file), s)));
}

const files = sourceFiles();
const graph = new Map(files.map((f) => [f, importsOf(f)]));

describe('layout', () => {
  it('keeps only the entry points at the root of src/', () => {
    const atRoot = readdirSync(join(ROOT, 'src'), { withFileTypes: true }).filter((e) => e.isFile()).map((e) => `src/${e.name}`);
    expect(atRoot.sort()).toEqual([...ENTRY_POINTS].sort());
  });

  it('puts every source file in a known layer', () => {
    expect(files.filter((f) => folderOf(f) === undefined)).toEqual([]);
  });

  it('never imports a layer above (or beside) its own', () => {
    const violations = files.flatMap((file) => {
      const from = folderOf(file)!;
      return graph.get(file)!.flatMap((target) => {
        const to = folderOf(target);
        return to === from || (to !== undefined && to !== 'entry' && ALLOWED[from].includes(to)) ? [] : [`${file} → ${target}`];
      });
    });
    expect(violations).toEqual([]);
  });

  it('has no import cycle', () => {
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (file: string, path: string[]): void => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...path.slice(path.indexOf(file)), file].join(' → '));
        return;
      }
      state.set(file, 'open');
      for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of files) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it('would catch a violation (the checks read real imports)', () => {
    expect(graph.get('src/engine/engine.ts')).toContain('src/engine/scheduler.ts');
    expect(ALLOWED.vision).not.toContain('src/engine');
  });
});
