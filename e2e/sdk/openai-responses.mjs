// OpenAI SDK: the Responses API through a routing group whose primary
// fails: responses.create plain (output_text), streamed (every named event
// in order, response.completed last), the stream helper's finalResponse(),
// and a follow-up turn with previous_response_id, which must go straight
// to the target that created the first response (not the failing primary).
// env: AISIX_MODEL, AISIX_SERVED_BY, AISIX_EXPECT_TEXT.
import OpenAI from 'openai';
import { base, key, need, check, eq, checkServed, main } from './lib.mjs';

const ORDER = [
  'response.created',
  'response.in_progress',
  'response.output_item.added',
  'response.content_part.added',
  'response.output_text.delta',
  'response.output_text.delta',
  'response.output_text.done',
  'response.content_part.done',
  'response.output_item.done',
  'response.completed',
];

main(async () => {
  const model = need('AISIX_MODEL');
  const servedBy = need('AISIX_SERVED_BY');
  const text = need('AISIX_EXPECT_TEXT');
  const client = new OpenAI({ baseURL: base + '/v1', apiKey: key, maxRetries: 0, timeout: 30000 });

  const { data: plain, response } = await client.responses
    .create({ model, input: 'Tell me a three sentence bedtime story about a unicorn.' })
    .withResponse();
  const first = checkServed(response, servedBy, 'plain response');
  eq(plain.object, 'response', 'plain response: object');
  eq(plain.status, 'completed', 'plain response: status');
  eq(plain.model, model, 'plain response: model (the name the caller asked for)');
  check(typeof plain.id === 'string' && plain.id.startsWith('resp_'), 'plain response: id', plain.id);
  eq(plain.output_text, text, 'plain response: output_text');
  check(plain.usage?.total_tokens > 0, 'plain response: usage', plain.usage);

  const { data: stream, response: sresp } = await client.responses
    .create({ model, input: 'Say hello.', stream: true })
    .withResponse();
  checkServed(sresp, servedBy, 'streamed response');
  const types = [];
  let deltas = '';
  let completed = null;
  let lastSeq = -1;
  const streamModels = {}; // the model each response.* event carries (sdk_test.go checks it)
  for await (const ev of stream) {
    types.push(ev.type);
    check(ev.sequence_number > lastSeq, `streamed response: sequence_number ${ev.sequence_number} after ${lastSeq}`);
    lastSeq = ev.sequence_number;
    if (ev.type === 'response.output_text.delta') deltas += ev.delta;
    if (ev.type === 'response.completed') completed = ev.response;
    if (ev.response?.model !== undefined) streamModels[ev.type] = ev.response.model;
  }
  eq(types, ORDER, 'streamed response: event types in order');
  eq(deltas, text, 'streamed response: assembled deltas');
  check(completed, 'streamed response: no response.completed event');
  eq(completed.status, 'completed', 'streamed response: response.completed status');
  eq(completed.output[0].content[0].text, text, 'streamed response: completed output text');

  // The helper checks the event order itself and assembles the response
  // (in this SDK version its finalResponse() has no output_text).
  const helper = client.responses.stream({ model, input: 'Say hello.' });
  const final = await helper.finalResponse();
  eq(final.status, 'completed', 'responses.stream finalResponse(): status');
  eq(final.output.flatMap((o) => o.content ?? []).map((c) => c.text).join(''), text, 'responses.stream finalResponse(): output text');

  const { data: next, response: nresp } = await client.responses
    .create({ model, input: 'And again.', previous_response_id: plain.id })
    .withResponse();
  const follow = checkServed(nresp, servedBy, 'previous_response_id turn', { direct: true });
  eq(next.previous_response_id, plain.id, 'previous_response_id turn: previous_response_id');
  eq(next.output_text, text + ' again', 'previous_response_id turn: output_text');

  return { model, first_served_by: first.served_by, first_attempts: first.attempts, events: types.length, follow_up_attempts: follow.attempts, follow_up_model: next.model, stream_models: streamModels };
});
