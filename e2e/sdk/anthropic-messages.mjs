// Anthropic SDK: messages.create plain, messages.stream of text, and
// messages.stream with a tool call (the tool input assembled from
// input_json_delta events, and finalMessage()), through a routing group
// whose primary fails.
// env: AISIX_MODEL, AISIX_SERVED_BY, AISIX_EXPECT_TEXT, AISIX_TOOL_INPUT
// (the JSON input the tool call must carry), AISIX_AUTH (x-api-key|bearer).
import { key, need, check, eq, checkServed, main } from './lib.mjs';
import { client } from './anthropic-lib.mjs';

const weather = {
  name: 'get_weather',
  description: 'Get the current weather in a given location',
  input_schema: {
    type: 'object',
    properties: { location: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
    required: ['location'],
  },
};

// checkOrder asserts the Messages stream grammar: message_start first,
// content blocks opened, filled and closed one index at a time,
// message_delta, then message_stop last (ping anywhere).
function checkOrder(events) {
  const types = events.map((e) => e.type).filter((t) => t !== 'ping');
  eq(types[0], 'message_start', 'stream: first event');
  eq(types.at(-1), 'message_stop', 'stream: last event');
  eq(types.at(-2), 'message_delta', 'stream: the event before message_stop');
  let open = null;
  let next = 0;
  for (const e of events) {
    if (e.type === 'content_block_start') {
      check(open === null && e.index === next, `stream: content_block_start index ${e.index} while ${open} open, want ${next}`);
      open = e.index;
    } else if (e.type === 'content_block_delta') {
      check(open === e.index, `stream: content_block_delta for index ${e.index} while ${open} open`);
    } else if (e.type === 'content_block_stop') {
      check(open === e.index, `stream: content_block_stop for index ${e.index} while ${open} open`);
      open = null;
      next++;
    } else if (e.type === 'message_delta') {
      check(open === null, 'stream: message_delta inside a content block');
    }
  }
  return types;
}

main(async () => {
  const model = need('AISIX_MODEL');
  const servedBy = need('AISIX_SERVED_BY');
  const text = need('AISIX_EXPECT_TEXT');
  const toolInput = JSON.parse(need('AISIX_TOOL_INPUT'));
  const anthropic = client(key);

  const { data: msg, response } = await anthropic.messages
    .create({ model, max_tokens: 1024, messages: [{ role: 'user', content: 'Hello, Claude' }] })
    .withResponse();
  const first = checkServed(response, servedBy, 'messages.create');
  eq(msg.type, 'message', 'messages.create: type');
  eq(msg.role, 'assistant', 'messages.create: role');
  eq(msg.model, model, 'messages.create: model (the name the caller asked for)');
  check(typeof msg.id === 'string' && msg.id.startsWith('msg_'), 'messages.create: id', msg.id);
  eq(msg.content, [{ type: 'text', text }], 'messages.create: content');
  eq(msg.stop_reason, 'end_turn', 'messages.create: stop_reason');
  check(msg.usage?.input_tokens > 0 && msg.usage?.output_tokens > 0, 'messages.create: usage', msg.usage);

  // A text stream: the SDK's text events and finalMessage().
  const textStream = anthropic.messages.stream({ model, max_tokens: 1024, messages: [{ role: 'user', content: 'Hello, Claude' }] });
  const textEvents = [];
  let streamedText = '';
  textStream.on('streamEvent', (ev) => textEvents.push(ev));
  textStream.on('text', (delta) => {
    streamedText += delta;
  });
  const { response: tresp } = await textStream.withResponse();
  checkServed(tresp, servedBy, 'messages.stream (text)');
  const textFinal = await textStream.finalMessage();
  checkOrder(textEvents);
  eq(streamedText, text, 'messages.stream (text): text events');
  eq(textFinal.content, [{ type: 'text', text }], 'messages.stream (text): finalMessage() content');
  eq(textFinal.stop_reason, 'end_turn', 'messages.stream (text): stop_reason');
  eq(textFinal.model, model, 'messages.stream (text): model in message_start');

  const stream = anthropic.messages.stream({
    model,
    max_tokens: 1024,
    tools: [weather],
    messages: [{ role: 'user', content: 'What is the weather like in San Francisco?' }],
  });
  const events = [];
  let json = '';
  stream.on('streamEvent', (ev) => events.push(ev));
  stream.on('inputJson', (delta) => {
    json += delta;
  });
  const { response: sresp } = await stream.withResponse();
  checkServed(sresp, servedBy, 'messages.stream');
  const final = await stream.finalMessage();
  const types = checkOrder(events);
  eq(final.stop_reason, 'tool_use', 'messages.stream: stop_reason');
  const tool = final.content.find((b) => b.type === 'tool_use');
  check(tool, 'messages.stream: no tool_use block in finalMessage()', final.content);
  eq(tool.name, 'get_weather', 'messages.stream: tool name');
  check(typeof tool.id === 'string' && tool.id !== '', 'messages.stream: tool_use id', tool.id);
  eq(tool.input, toolInput, 'messages.stream: finalMessage() tool input');
  eq(JSON.parse(json), toolInput, 'messages.stream: input assembled from input_json_delta');
  check(final.usage?.output_tokens > 0, 'messages.stream: usage', final.usage);

  return { model, first_served_by: first.served_by, first_attempts: first.attempts, stream_events: types };
});
