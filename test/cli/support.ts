// Running the `iris` command as a user would: a child process, its output and exit code.
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../helpers.ts';

const run = promisify(execFile);
const BIN = join(ROOT, 'bin/iris.js');

export async function iris(args: string[], stdin?: string): Promise<{ stdout: string; stderr: string; code: number }> {
  const child = run(process.execPath, [BIN, ...args], { cwd: tmpdir(), env: { ...process.env, NODE_NO_WARNINGS: '1' } });
  if (stdin !== undefined) {
    child.child.stdin!.end(stdin);
  }
  try {
    const { stdout, stderr } = await child;
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}
