// Starting Iris from a benchmark: the environment `npm start` gives the server (the `start`
// script's `NAME=${NAME:-value}` prefixes in package.json, e.g. glibc's mmap threshold), so
// benchmarks start Iris as users do, and the server as a child process.
// A variable already set in this process's environment wins, as it does in the script.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { join } from 'node:path';
import { ROOT } from '../test/helpers.ts';

export function npmStartEnv(): Record<string, string> {
  const script = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start;
  const env: Record<string, string> = {};
  for (const m of script.matchAll(/(\w+)=\$\{\1:-([^}]*)\}/g)) env[m[1]] = process.env[m[1]] ?? m[2];
  return env;
}

/**
 * `node <args>` in the repository (stdout read, stderr shown), once it prints that its models are ready: the child and the GraphQL URL it serves.
 * `prefix`: a command that execs node, e.g. `['taskset', '-c', '0']` (the child's pid is then node's).
 */
export async function startIrisProcess(args: readonly string[], env: NodeJS.ProcessEnv = process.env, prefix: readonly string[] = []): Promise<{ child: ChildProcessByStdio<null, Readable, null>; url: string }> {
  const [command, ...rest] = [...prefix, process.execPath, ...args];
  const child = spawn(command, rest, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /iris: serving (\S+)/.exec(out);
      if (m && /models ready/.test(out)) resolve(m[1]);
    });
    child.once('exit', () => reject(new Error(`server exited:\n${out}`)));
  });
  return { child, url };
}
