// OpenAI SDK: embeddings through a routing group whose primary fails:
// the SDK's default (it asks for base64 and decodes it to floats), an
// explicit float encoding, an explicit base64 encoding decoded here, a
// batch of inputs, token-array inputs and dimensions.
// env: AISIX_MODEL, AISIX_SERVED_BY.
import OpenAI from 'openai';
import { base, key, need, check, eq, checkServed, main } from './lib.mjs';

// The fake upstreams' vector for input i: n floats (i + (j+1)/8).
const vector = (i, n) => Array.from({ length: n }, (_, j) => i + (j + 1) / 8);

main(async () => {
  const model = need('AISIX_MODEL');
  const servedBy = need('AISIX_SERVED_BY');
  const client = new OpenAI({ baseURL: base + '/v1', apiKey: key, maxRetries: 0, timeout: 30000 });

  // The SDK's default: encoding_format base64 on the wire, floats to the user.
  const { data: dflt, response } = await client.embeddings.create({ model, input: 'The food was delicious.' }).withResponse();
  const first = checkServed(response, servedBy, 'default encoding');
  eq(dflt.object, 'list', 'default encoding: object');
  eq(dflt.model, model, 'default encoding: model (the name the caller asked for)');
  eq(dflt.data.length, 1, 'default encoding: data length');
  eq(dflt.data[0].object, 'embedding', 'default encoding: data[0].object');
  eq(dflt.data[0].embedding, vector(0, 8), 'default encoding: the SDK-decoded vector');
  check(dflt.usage?.prompt_tokens > 0, 'default encoding: usage', dflt.usage);

  const { data: floats, response: fresp } = await client.embeddings
    .create({ model, input: ['one', 'two', 'three'], encoding_format: 'float' })
    .withResponse();
  checkServed(fresp, servedBy, 'float encoding');
  eq(floats.data.map((d) => d.index), [0, 1, 2], 'float encoding: indexes');
  floats.data.forEach((d, i) => eq(d.embedding, vector(i, 8), `float encoding: vector ${i}`));

  const b64 = await client.embeddings.create({ model, input: 'x', encoding_format: 'base64' });
  check(typeof b64.data[0].embedding === 'string', 'base64 encoding: the embedding is not a base64 string', b64.data[0].embedding);
  const buf = Buffer.from(b64.data[0].embedding, 'base64');
  eq(Array.from(new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4)), vector(0, 8), 'base64 encoding: decoded vector');

  const tokens = await client.embeddings.create({ model, input: [[9906, 1917], [15339]], encoding_format: 'float' });
  eq(tokens.data.map((d) => d.embedding), [vector(0, 8), vector(1, 8)], 'token-array input: vectors');

  const dims = await client.embeddings.create({ model, input: 'short', dimensions: 3 });
  eq(dims.data[0].embedding, vector(0, 3), 'dimensions 3: vector');

  return { model, first_served_by: first.served_by, first_attempts: first.attempts };
});
