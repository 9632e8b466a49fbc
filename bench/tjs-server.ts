// The benchmark's transformers.js baseline as an HTTP server, so the load generator drives
// it exactly as it drives Iris: POST /generate {task, image (base64), question?, prompt?,
// maxNewTokens, minNewTokens?} answers NDJSON, one line per generated token, then {"done": true}.
// Concurrent requests each call generate() (transformers.js has no request batching).
// Prompts are built by Iris's fusion code from the same folder, so both decode the same ids.
// Its onnxruntime sessions get one intra-op thread, as Iris's decoder does (`--threads 0`:
// onnxruntime's default, a thread per physical core that spin-waits between ops: on this
// 2-core machine, reported as 2 cores of 1 thread, the spinning thread doubled the server's
// CPU per caption, 16 ms more at 32 clients, while on a machine reported as 1 core of 2
// threads the default is one thread: the baseline would move with the machine's topology).
// Usage: tsx bench/tjs-server.ts <modelDir> [--threads N]   (prints "tjs: serving http://127.0.0.1:PORT")
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AutoModelForVision2Seq, AutoProcessor, BaseStreamer, RawImage, env } from '@huggingface/transformers';
import { readModelFolder } from '../src/model/folder.ts';
import { buildPromptIds, promptText } from '../fusion/prompts.ts';
import { TextTokenizer } from '../text/tokenizer.ts';
import type { Task } from '../src/contract/types.ts';

env.allowRemoteModels = false;
env.useFSCache = false;

interface Body {
  task: Task;
  image: string;
  question?: string;
  prompt?: string;
  maxNewTokens: number;
  /** Forces at least this many new tokens (fixed-length generations); 0 or absent: none. */
  minNewTokens?: number;
}

const dir = process.argv[2];
if (!dir) throw new Error('usage: tsx bench/tjs-server.ts <modelDir> [--threads N]');
const threadsAt = process.argv.indexOf('--threads');
const threads = threadsAt > 0 ? Number(process.argv[threadsAt + 1]) : 1;
const session_options = threads > 0 ? { intraOpNumThreads: threads, interOpNumThreads: 1 } : {};
const folder = await readModelFolder(dir);
const tokenizer = await TextTokenizer.load(folder.dir);
const processor = await AutoProcessor.from_pretrained(folder.dir, { local_files_only: true });
const model = await AutoModelForVision2Seq.from_pretrained(folder.dir, { local_files_only: true, dtype: 'fp32', session_options });

async function readBody(req: IncomingMessage): Promise<Body> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Body;
}

/** Calls `onToken` per generated token; the first put carries the prompt, which is not generated. */
class TokenCounter extends BaseStreamer {
  private isPrompt = true;

  constructor(private readonly promptLength: number, private readonly onToken: () => void) {
    super();
  }

  put(value: bigint[][]): void {
    if (this.isPrompt && value[0]?.length === this.promptLength) {
      this.isPrompt = false;
      return;
    }
    this.isPrompt = false;
    this.onToken();
  }

  end(): void {}
}

const server = createServer((req, res) => {
  void (async () => {
    try {
      const body = await readBody(req);
      const bytes = Buffer.from(body.image, 'base64');
      const { pixel_values } = await processor(await RawImage.fromBlob(new Blob([bytes])));
      const ids = buildPromptIds(promptText(body, folder.templates, []), tokenizer, { decoderStartId: folder.ids.decoderStart });
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      const streamer = new TokenCounter(ids.length, () => res.write('{"t":1}\n'));
      await model.generate({ pixel_values, decoder_input_ids: [Array.from(ids)] as never, max_new_tokens: body.maxNewTokens, ...(body.minNewTokens ? { min_new_tokens: body.minNewTokens } : {}), do_sample: false, streamer: streamer as never });
      res.end('{"done":true}\n');
    } catch (error) {
      if (!res.headersSent) res.writeHead(500);
      res.end(JSON.stringify({ error: String(error) }) + '\n');
    }
  })();
});
server.listen(0, '127.0.0.1', () => console.log(`tjs: serving http://127.0.0.1:${(server.address() as AddressInfo).port}/generate`));
