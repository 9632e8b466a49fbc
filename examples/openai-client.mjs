// The official openai npm client against Iris: caption, answer and a streamed
// continuation of a sample scene. Run `npm start` first, then `node examples/openai-client.mjs`.
// IRIS_URL (default http://127.0.0.1:4000/v1) and IRIS_API_KEY (when the server wants one).
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';

const client = new OpenAI({
  baseURL: process.env.IRIS_URL ?? 'http://127.0.0.1:4000/v1',
  apiKey: process.env.IRIS_API_KEY ?? 'none', // the client insists on one; Iris ignores it unless --api-keys is set
});
const image = { type: 'image_url', image_url: { url: `data:image/png;base64,${readFileSync(new URL('../assets/samples/scene-0.png', import.meta.url)).toString('base64')}` } };
const say = async (text) => {
  const content = text ? [image, { type: 'text', text }] : [image];
  const completion = await client.chat.completions.create({ model: 'shapes-base', messages: [{ role: 'user', content }] });
  return completion.choices[0].message.content;
};

console.log('caption:', await say());
console.log('answer: ', await say('what color is the square?'));
const stream = await client.chat.completions.create({
  model: 'shapes-base',
  messages: [{ role: 'user', content: [image, { type: 'text', text: 'a large green' }] }],
  stream: true,
  stream_options: { include_usage: true },
});
process.stdout.write('continue: a large green'); // the continuation starts with the space its first word needs
for await (const chunk of stream) {
  process.stdout.write(chunk.choices[0]?.delta.content ?? '');
  if (chunk.usage) process.stdout.write(`\n(${chunk.usage.completion_tokens} tokens)\n`);
}
