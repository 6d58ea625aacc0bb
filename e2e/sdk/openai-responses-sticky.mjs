// OpenAI SDK: previous_response_id goes to the target that created the
// response, even where the group's strategy would pick another. The group
// is round_robin over two targets on two upstreams, each of which knows
// only the responses it created (the other answers 400
// previous_response_not_found, as OpenAI does for an unknown id).
// env: AISIX_MODEL, AISIX_TARGETS (the two targets, comma-separated),
// AISIX_EXPECT_TEXT.
import OpenAI from 'openai';
import { base, key, need, check, eq, routing, main } from './lib.mjs';

main(async () => {
  const model = need('AISIX_MODEL');
  const targets = need('AISIX_TARGETS').split(',');
  const text = need('AISIX_EXPECT_TEXT');
  const client = new OpenAI({ baseURL: base + '/v1', apiKey: key, maxRetries: 0, timeout: 30000 });

  // Without previous_response_id the group alternates between its targets.
  const rotation = [];
  for (let i = 0; i < 2; i++) {
    const { response } = await client.responses.create({ model, input: 'Say hello.' }).withResponse();
    rotation.push(routing(response).served_by);
  }
  eq([...rotation].sort(), [...targets].sort(), 'round_robin without previous_response_id: the targets that served');

  const { data: first, response } = await client.responses.create({ model, input: 'Start a story.' }).withResponse();
  const creator = routing(response).served_by;
  check(targets.includes(creator), `the first turn was served by ${creator}, want one of ${targets}`);

  // Four follow-up turns, chained, plain and streamed: each must reach the
  // creator although round_robin would alternate.
  let prev = first.id;
  const turns = [];
  for (let i = 0; i < 4; i++) {
    let id;
    let served;
    if (i % 2 === 0) {
      const { data, response: r } = await client.responses.create({ model, input: `Turn ${i}.`, previous_response_id: prev }).withResponse();
      eq(data.previous_response_id, prev, `turn ${i}: previous_response_id`);
      eq(data.output_text, text + ' again', `turn ${i}: output_text`);
      id = data.id;
      served = routing(r).served_by;
    } else {
      const { data: stream, response: r } = await client.responses
        .create({ model, input: `Turn ${i}.`, previous_response_id: prev, stream: true })
        .withResponse();
      let completed = null;
      for await (const ev of stream) {
        if (ev.type === 'response.completed') completed = ev.response;
      }
      check(completed, `turn ${i} (stream): no response.completed`);
      eq(completed.previous_response_id, prev, `turn ${i} (stream): previous_response_id`);
      id = completed.id;
      served = routing(r).served_by;
    }
    eq(served, creator, `turn ${i}: x-aisix-served-by for previous_response_id ${prev}`);
    turns.push(served);
    prev = id;
  }
  return { model, rotation, creator, turns };
});
