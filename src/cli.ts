// The `iris` command line: caption / ask / generate / batch / eval / quantize over one model
// folder. Help and usage errors are answered from the arguments alone; the commands (and
// onnxruntime, sharp and the engine with them) load only when one runs.
import { USAGE, UsageError, parseCli } from './cli/args.ts';
import { IrisError } from './contract/types.ts';

async function main(argv: string[]): Promise<number> {
  const settings = parseCli(argv);
  if (settings.isHelp || !settings.command) {
    console.log(USAGE);
    return settings.command || settings.isHelp ? 0 : 2;
  }
  const { runCommand } = await import('./cli/commands.ts');
  return runCommand(settings);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`iris: ${(err as Error).message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else if (err instanceof IrisError) {
      console.error(`iris: error [${err.code}]: ${err.message}`);
      process.exitCode = 1;
    } else {
      console.error(err);
      process.exitCode = 1;
    }
  },
);
