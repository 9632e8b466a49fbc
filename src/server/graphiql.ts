// What GraphiQL opens with instead of its stock welcome text: the models, and a caption
// whose image goes in the variables pane (a URL, or base64 as the README's curl makes it).
export const GRAPHIQL_DEFAULT_QUERY = `# Iris: caption, answer and continue images. Run "Models" first; for "Caption", put the
# image in Variables, e.g. { "image": { "url": "https://..." } } (private addresses need
# --url-allow) or { "image": { "base64": "..." } }. With --api-keys, add the header
# { "Authorization": "Bearer <key>" } in Headers.

query Models {
  models { id ready tasks dtype default }
}

query Caption($image: ImageInput!) {
  caption(image: $image, options: { maxNewTokens: 32 }) {
    text
    finishReason
    usage { promptTokens imageTokens completionTokens }
    timings { totalMs }
  }
}

query Answer($image: ImageInput!) {
  answer(image: $image, question: "how many shapes are there?") { text finishReason }
}
`;
