// OpenAI SDK on the claude-prod group: chat.completions.create with a
// function tool, plain or streamed (AISIX_STREAM=1), answered with a tool
// call by whichever Claude target serves it.
// env: AISIX_MODEL, AISIX_STREAM, AISIX_SERVED_BY, AISIX_TRAIL,
// AISIX_TOOL_ID (the tool call id the serving fake gives), AISIX_TOOL_INPUT
// (the JSON arguments), AISIX_EXPECT_TEXT (the text before the call).
import OpenAI from 'openai';
import { base, key, need, check, eq, main } from './lib.mjs';
import { weather, checkRoute } from './claudeprod-lib.mjs';

main(async () => {
  const model = need('AISIX_MODEL');
  const stream = need('AISIX_STREAM') === '1';
  const wantID = need('AISIX_TOOL_ID');
  const wantInput = JSON.parse(need('AISIX_TOOL_INPUT'));
  const wantText = need('AISIX_EXPECT_TEXT');
  const client = new OpenAI({ baseURL: base + '/v1', apiKey: key, maxRetries: 0, timeout: 30000 });
  const request = {
    model,
    messages: [{ role: 'user', content: 'What is the weather like in Paris?' }],
    tools: [{ type: 'function', function: { name: weather.name, description: weather.description, parameters: weather.schema } }],
  };

  if (!stream) {
    const { data, response } = await client.chat.completions.create(request).withResponse();
    const r = checkRoute(response, 'chat');
    eq(data.object, 'chat.completion', 'chat: object');
    eq(data.model, model, 'chat: model (the name the caller asked for)');
    const choice = data.choices[0];
    eq(choice.finish_reason, 'tool_calls', 'chat: finish_reason');
    eq(choice.message.content, wantText, 'chat: content');
    const calls = choice.message.tool_calls ?? [];
    eq(calls.length, 1, 'chat: number of tool calls');
    eq(calls[0].type, 'function', 'chat: tool call type');
    eq(calls[0].id, wantID, 'chat: tool call id');
    eq(calls[0].function.name, weather.name, 'chat: function name');
    eq(JSON.parse(calls[0].function.arguments), wantInput, 'chat: function arguments');
    check(data.usage?.total_tokens > 0, 'chat: usage', data.usage);
    return { model, served_by: r.served_by, attempts: r.attempts, tool_call: calls[0].id };
  }

  const { data: chunks, response } = await client.chat.completions
    .create({ ...request, stream: true, stream_options: { include_usage: true } })
    .withResponse();
  const r = checkRoute(response, 'stream');
  let text = '';
  let finish = null;
  const calls = [];
  let usage = null;
  let n = 0;
  const ids = new Set();
  for await (const chunk of chunks) {
    n++;
    ids.add(chunk.id);
    usage = chunk.usage ?? usage;
    eq(chunk.object, 'chat.completion.chunk', 'stream: chunk object');
    eq(chunk.model, model, 'stream: chunk model');
    const c = chunk.choices[0];
    if (!c) continue;
    text += c.delta?.content ?? '';
    finish = c.finish_reason ?? finish;
    for (const d of c.delta?.tool_calls ?? []) {
      const call = (calls[d.index] ??= { id: '', name: '', args: '' });
      call.id += d.id ?? '';
      call.name += d.function?.name ?? '';
      call.args += d.function?.arguments ?? '';
    }
  }
  // A failed attempt's chunks never reach the caller: one completion id.
  eq(ids.size, 1, 'stream: chunk ids');
  eq(finish, 'tool_calls', 'stream: finish_reason');
  eq(text, wantText, 'stream: assembled content');
  eq(calls.length, 1, 'stream: number of tool calls');
  eq(calls[0].id, wantID, 'stream: tool call id');
  eq(calls[0].name, weather.name, 'stream: function name');
  eq(JSON.parse(calls[0].args), wantInput, 'stream: function arguments assembled from the deltas');
  check(usage?.total_tokens > 0 && usage.total_tokens === usage.prompt_tokens + usage.completion_tokens,
    'stream: the include_usage chunk', usage);
  return { model, served_by: r.served_by, attempts: r.attempts, chunks: n, tool_call: calls[0].id };
});
