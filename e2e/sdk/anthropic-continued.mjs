// Anthropic SDK: a stream whose target drops the connection after four
// words, on a routing model with stream_failure continue: aisix sends the
// conversation with those words as an assistant prefill to the next target
// and relays its continuation into the same stream. The SDK's own
// accumulator must see one well-formed message: one message_start, one
// text block holding the whole answer, one stop_reason, one message_stop,
// and no error.
// env: AISIX_MODEL, AISIX_SERVED_BY, AISIX_EXPECT_TEXT.
import { key, need, check, eq, checkServed, main } from './lib.mjs';
import { client } from './anthropic-lib.mjs';

main(async () => {
  const model = need('AISIX_MODEL');
  const want = need('AISIX_EXPECT_TEXT');
  const anthropic = client(key);
  const stream = anthropic.messages.stream({ model, max_tokens: 256, messages: [{ role: 'user', content: 'Tell me about the cut.' }] });
  let text = '';
  const types = [];
  stream.on('text', (d) => {
    text += d;
  });
  stream.on('streamEvent', (ev) => types.push(ev.type));
  const { response } = await stream.withResponse();
  // The headers went with the first target's first content.
  checkServed(response, need('AISIX_SERVED_BY'), 'continued stream');
  const msg = await stream.finalMessage();
  eq(text, want, 'continued stream: the text events');
  eq(msg.content.length, 1, 'continued stream: content blocks');
  eq(msg.content[0].type, 'text', 'continued stream: block type');
  eq(msg.content[0].text, want, 'continued stream: the final message text');
  eq(msg.stop_reason, 'end_turn', 'continued stream: stop_reason');
  eq(types.filter((t) => t === 'message_start').length, 1, 'continued stream: message_start events');
  eq(types.filter((t) => t === 'content_block_start').length, 1, 'continued stream: content_block_start events');
  eq(types.filter((t) => t === 'content_block_stop').length, 1, 'continued stream: content_block_stop events');
  eq(types.at(-1), 'message_stop', 'continued stream: the last event');
  // Usage sums both attempts: 25 + 40 in, the cut one's 4 words + 6 out.
  eq(msg.usage.output_tokens, 10, 'continued stream: usage.output_tokens');
  eq(msg.usage.input_tokens, 65, 'continued stream: usage.input_tokens');
  check(!types.includes('error'), 'continued stream: an error event', types);
  return { model, events: types.length, text, usage: msg.usage };
});
