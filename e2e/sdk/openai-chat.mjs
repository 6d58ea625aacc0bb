// OpenAI SDK: chat completions, plain and streamed (raw chunks and the
// stream helper), through a routing group whose primary fails.
// env: AISIX_MODEL, AISIX_SERVED_BY, AISIX_EXPECT_TEXT.
import OpenAI from 'openai';
import { base, key, need, check, eq, checkServed, main } from './lib.mjs';

main(async () => {
  const model = need('AISIX_MODEL');
  const servedBy = need('AISIX_SERVED_BY');
  const text = need('AISIX_EXPECT_TEXT');
  const client = new OpenAI({ baseURL: base + '/v1', apiKey: key, maxRetries: 0, timeout: 30000 });
  const messages = [{ role: 'user', content: 'Say hello.' }];

  const { data: plain, response } = await client.chat.completions.create({ model, messages }).withResponse();
  const first = checkServed(response, servedBy, 'plain chat');
  eq(plain.object, 'chat.completion', 'plain chat: object');
  eq(plain.model, model, 'plain chat: model (the name the caller asked for)');
  eq(plain.choices[0].message.content, text, 'plain chat: content');
  eq(plain.choices[0].finish_reason, 'stop', 'plain chat: finish_reason');
  check(plain.usage?.total_tokens > 0, 'plain chat: usage', plain.usage);

  const { data: stream, response: sresp } = await client.chat.completions
    .create({ model, messages, stream: true, stream_options: { include_usage: true } })
    .withResponse();
  checkServed(sresp, servedBy, 'streamed chat');
  let streamed = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    eq(chunk.object, 'chat.completion.chunk', 'streamed chat: chunk object');
    eq(chunk.model, model, 'streamed chat: chunk model');
    const c = chunk.choices[0];
    if (c) {
      streamed += c.delta?.content ?? '';
      finish = c.finish_reason ?? finish;
    }
    usage = chunk.usage ?? usage;
  }
  eq(streamed, text, 'streamed chat: assembled content');
  eq(finish, 'stop', 'streamed chat: finish_reason');
  check(usage?.total_tokens > 0, 'streamed chat: the include_usage chunk', usage);

  const helper = client.chat.completions.stream({ model, messages });
  const final = await helper.finalChatCompletion();
  eq(final.choices[0].message.content, text, 'chat stream helper: final content');

  return { model, first_served_by: first.served_by, first_attempts: first.attempts, chunks, streamed };
});
