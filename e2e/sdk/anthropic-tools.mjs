// Anthropic SDK: a tool round trip with messages.create: the answer's
// tool_use block, then the tool_result sent back in the next user turn
// (with the assistant turn as the SDK returned it), and the text answer
// that uses it, through a routing group whose primary fails.
// env: AISIX_MODEL, AISIX_SERVED_BY, AISIX_TOOL_INPUT (the JSON input the
// tool call carries), AISIX_TOOL_ANSWER (the final text), AISIX_PRIMARY.
import { key, need, check, eq, checkServed, main } from './lib.mjs';
import { client } from './anthropic-lib.mjs';

const tools = [{
  name: 'get_weather',
  description: 'Get the current weather in a given location',
  input_schema: { type: 'object', properties: { location: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } }, required: ['location'] },
}];

main(async () => {
  const model = need('AISIX_MODEL');
  const servedBy = need('AISIX_SERVED_BY');
  const anthropic = client(key);
  const question = { role: 'user', content: 'What is the weather like in San Francisco?' };

  const { data: first, response } = await anthropic.messages.create({ model, max_tokens: 1024, tools, messages: [question] }).withResponse();
  checkServed(response, servedBy, 'tool call');
  eq(first.stop_reason, 'tool_use', 'tool call: stop_reason');
  const use = first.content.find((b) => b.type === 'tool_use');
  check(use, 'tool call: no tool_use block', first.content);
  eq(use.name, 'get_weather', 'tool call: name');
  eq(use.input, JSON.parse(need('AISIX_TOOL_INPUT')), 'tool call: input');
  check(typeof use.id === 'string' && use.id !== '', 'tool call: id', use.id);

  const { data: second, response: r2 } = await anthropic.messages
    .create({
      model,
      max_tokens: 1024,
      tools,
      messages: [
        question,
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '18 °C, sunny' }] },
      ],
    })
    .withResponse();
  checkServed(r2, servedBy, 'tool result');
  eq(second.stop_reason, 'end_turn', 'tool result: stop_reason');
  eq(second.content.filter((b) => b.type === 'text').map((b) => b.text).join(''), need('AISIX_TOOL_ANSWER'), 'tool result: the answer');
  return { model, tool_use_id: use.id };
});
