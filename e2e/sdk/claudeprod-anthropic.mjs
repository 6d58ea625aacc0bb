// Anthropic SDK on the claude-prod group: messages.create with a tool,
// plain or as messages.stream (AISIX_STREAM=1), answered with a text block
// and a tool_use block by whichever Claude target serves it.
// env: AISIX_MODEL, AISIX_STREAM, AISIX_SERVED_BY, AISIX_TRAIL,
// AISIX_TOOL_ID, AISIX_TOOL_INPUT, AISIX_EXPECT_TEXT, AISIX_AUTH.
import { key, need, check, eq, main } from './lib.mjs';
import { client } from './anthropic-lib.mjs';
import { weather, checkRoute } from './claudeprod-lib.mjs';

function checkMessage(msg, model, what) {
  eq(msg.type, 'message', `${what}: type`);
  eq(msg.role, 'assistant', `${what}: role`);
  eq(msg.model, model, `${what}: model (the name the caller asked for)`);
  check(typeof msg.id === 'string' && msg.id !== '', `${what}: id`, msg.id);
  eq(msg.stop_reason, 'tool_use', `${what}: stop_reason`);
  eq(msg.content.map((b) => b.type), ['text', 'tool_use'], `${what}: content block types`);
  eq(msg.content[0].text, need('AISIX_EXPECT_TEXT'), `${what}: text`);
  const use = msg.content[1];
  eq(use.id, need('AISIX_TOOL_ID'), `${what}: tool_use id`);
  eq(use.name, weather.name, `${what}: tool_use name`);
  eq(use.input, JSON.parse(need('AISIX_TOOL_INPUT')), `${what}: tool_use input`);
  check(msg.usage?.output_tokens > 0, `${what}: usage`, msg.usage);
}

main(async () => {
  const model = need('AISIX_MODEL');
  const stream = need('AISIX_STREAM') === '1';
  const anthropic = client(key);
  const request = {
    model,
    max_tokens: 1024,
    tools: [{ name: weather.name, description: weather.description, input_schema: weather.schema }],
    messages: [{ role: 'user', content: 'What is the weather like in Paris?' }],
  };

  if (!stream) {
    const { data, response } = await anthropic.messages.create(request).withResponse();
    const r = checkRoute(response, 'messages.create');
    checkMessage(data, model, 'messages.create');
    return { model, served_by: r.served_by, attempts: r.attempts, tool_use: data.content[1].id };
  }

  const s = anthropic.messages.stream(request);
  const types = [];
  let json = '';
  s.on('streamEvent', (ev) => types.push(ev.type));
  s.on('inputJson', (delta) => {
    json += delta;
  });
  const { response } = await s.withResponse();
  const r = checkRoute(response, 'messages.stream');
  const final = await s.finalMessage();
  const seen = types.filter((t) => t !== 'ping');
  eq(seen[0], 'message_start', 'messages.stream: first event');
  eq(seen.at(-1), 'message_stop', 'messages.stream: last event');
  check(!seen.includes('error'), 'messages.stream: an error event', seen);
  // A failed attempt's events never reach the caller: one message, its two
  // blocks, each opened and closed once.
  eq(seen.filter((t) => t === 'message_start').length, 1, 'messages.stream: message_start events');
  eq(seen.filter((t) => t === 'content_block_start').length, 2, 'messages.stream: content_block_start events');
  eq(seen.filter((t) => t === 'content_block_stop').length, 2, 'messages.stream: content_block_stop events');
  checkMessage(final, model, 'messages.stream');
  eq(JSON.parse(json), JSON.parse(need('AISIX_TOOL_INPUT')), 'messages.stream: input assembled from input_json_delta');
  return { model, served_by: r.served_by, attempts: r.attempts, events: seen.length, tool_use: final.content[1].id };
});
