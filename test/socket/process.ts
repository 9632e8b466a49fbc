// `npm start` as a child process (node --import tsx src/server.ts), for tests of what
// only a whole process shows: signals, exit codes, start-up failures. The port is 0 and
// read back from the "iris: serving <url>" line.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../helpers.ts';

export interface IrisProcess {
  readonly child: ChildProcess;
  /** The GraphQL endpoint (once `ready` resolved). */
  url: string;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
  /** Resolves when a line matching `pattern` was written (rejects if the process exits first). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

export function startIrisProcess(args: readonly string[], env: Record<string, string> = {}): IrisProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/server.ts'), '--port', '0', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer): void => {
    text += chunk.toString();
    listeners.forEach((l) => l());
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const proc: IrisProcess = {
    child,
    url: '',
    output: () => text,
    exited,
    waitFor(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const match = pattern.exec(text);
          if (!match) return;
          cleanup();
          resolve(match[0]);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no ${pattern} within ${timeoutMs} ms; output:\n${text}`));
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        void exited.then(() => {
          if (!listeners.has(check)) return;
          cleanup();
          reject(new Error(`the process exited before ${pattern}; output:\n${text}`));
        });
        check();
      });
    },
  };
  void proc.waitFor(/iris: serving (\S+)/).then(
    (line) => (proc.url = line.replace('iris: serving ', '')),
    () => undefined,
  );
  return proc;
}

/** Starts the process and waits until its models are loaded. */
export async function startReadyIris(args: readonly string[], env: Record<string, string> = {}): Promise<IrisProcess> {
  const proc = startIrisProcess(args, env);
  const line = await proc.waitFor(/iris: serving (\S+)/);
  proc.url = line.replace('iris: serving ', '');
  await proc.waitFor(/iris: models ready/);
  return proc;
}
