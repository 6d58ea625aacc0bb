// Anthropic SDK: a translated stream whose upstream drops after the first
// content: the caller has had content, so there is no failover; the stream
// ends with Anthropic's `event: error`, which the SDK raises as an APIError
// carrying the error envelope, after the text that did arrive.
// env: AISIX_MODEL, AISIX_SERVED_BY.
import Anthropic from '@anthropic-ai/sdk';
import { key, need, check, eq, checkServed, main } from './lib.mjs';
import { client } from './anthropic-lib.mjs';

main(async () => {
  const model = need('AISIX_MODEL');
  const anthropic = client(key);
  const stream = anthropic.messages.stream({ model, max_tokens: 256, messages: [{ role: 'user', content: 'Hello, Claude' }] });
  let text = '';
  const types = [];
  stream.on('text', (d) => {
    text += d;
  });
  stream.on('streamEvent', (ev) => types.push(ev.type));
  const { response } = await stream.withResponse();
  checkServed(response, need('AISIX_SERVED_BY'), 'broken stream');
  eq(response.status, 200, 'broken stream: status');
  let err = null;
  try {
    await stream.finalMessage();
  } catch (e) {
    err = e;
  }
  check(err, 'broken stream: finalMessage() resolved; want the stream error', types);
  check(err instanceof Anthropic.APIError, `broken stream: want an APIError, got ${err?.constructor?.name}: ${err?.message}`);
  eq(err.error?.type, 'error', 'broken stream: error envelope type');
  check(typeof err.error?.error?.type === 'string' && err.error.error.type !== '', 'broken stream: error.type', err.error);
  eq(text, 'hello ', 'broken stream: the text before the error');
  eq(types.slice(0, 3), ['message_start', 'content_block_start', 'content_block_delta'], 'broken stream: events before the error');
  return { model, events: types, error_type: err.error.error.type, message: err.error.error.message };
});
