// A GraphQL client over HTTP and WebSocket (graphql-ws) with an API key. Run `npm start`
// first, then `node examples/graphql-client.mjs`. IRIS_API_KEY when the server wants one.
import { readFileSync } from 'node:fs';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const key = process.env.IRIS_API_KEY;
const base64 = readFileSync(new URL('../assets/samples/scene-1.png', import.meta.url)).toString('base64');

// HTTP: the key in the Authorization header.
const response = await fetch('http://127.0.0.1:4000/graphql', {
  method: 'POST',
  headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
  body: JSON.stringify({ query: 'query($i: String!) { caption(image: { base64: $i }) { text finishReason } }', variables: { i: base64 } }),
});
console.log(JSON.stringify(await response.json()));

// WebSocket: the key in the connection_init payload.
const client = createClient({ url: 'ws://127.0.0.1:4000/graphql', webSocketImpl: WebSocket, connectionParams: key ? { authorization: `Bearer ${key}` } : {} });
const query = 'subscription($i: ImageInput!) { answerStream(image: $i, question: "how many shapes are there?") { delta done } }';
for await (const event of client.iterate({ query, variables: { i: { base64 } } })) {
  console.log(JSON.stringify(event.data?.answerStream));
}
await client.dispose();
