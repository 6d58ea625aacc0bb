// OpenAI SDK: legacy completions, plain and streamed, through a routing
// group whose primary fails.
// env: AISIX_MODEL, AISIX_SERVED_BY, AISIX_EXPECT_TEXT.
import OpenAI from 'openai';
import { base, key, need, check, eq, checkServed, main } from './lib.mjs';

main(async () => {
  const model = need('AISIX_MODEL');
  const servedBy = need('AISIX_SERVED_BY');
  const text = ' ' + need('AISIX_EXPECT_TEXT');
  const client = new OpenAI({ baseURL: base + '/v1', apiKey: key, maxRetries: 0, timeout: 30000 });

  const { data: plain, response } = await client.completions
    .create({ model, prompt: 'Say this is a test', max_tokens: 7 })
    .withResponse();
  const first = checkServed(response, servedBy, 'plain completion');
  eq(plain.object, 'text_completion', 'plain completion: object');
  eq(plain.model, model, 'plain completion: model (the name the caller asked for)');
  eq(plain.choices[0].text, text, 'plain completion: text');
  eq(plain.choices[0].finish_reason, 'stop', 'plain completion: finish_reason');
  check(plain.usage?.total_tokens > 0, 'plain completion: usage', plain.usage);

  const { data: stream, response: sresp } = await client.completions
    .create({ model, prompt: 'Say this is a test', max_tokens: 7, stream: true })
    .withResponse();
  checkServed(sresp, servedBy, 'streamed completion');
  let streamed = '';
  let finish = null;
  for await (const chunk of stream) {
    eq(chunk.object, 'text_completion', 'streamed completion: chunk object');
    eq(chunk.model, model, 'streamed completion: chunk model');
    streamed += chunk.choices[0]?.text ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  eq(streamed, text, 'streamed completion: assembled text');
  eq(finish, 'stop', 'streamed completion: finish_reason');

  return { model, first_served_by: first.served_by, first_attempts: first.attempts, streamed };
});
