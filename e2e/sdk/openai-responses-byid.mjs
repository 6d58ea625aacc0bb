// OpenAI SDK: a stored response by id: responses.retrieve (twice: a
// round_robin group would alternate), cancel and delete, each reaching the
// target that created it (the other upstream does not know the id and
// answers 404).
// env: AISIX_MODEL, AISIX_EXPECT_TEXT.
import OpenAI from 'openai';
import { base, key, need, eq, routing, main } from './lib.mjs';

main(async () => {
  const model = need('AISIX_MODEL');
  const text = need('AISIX_EXPECT_TEXT');
  const client = new OpenAI({ baseURL: base + '/v1', apiKey: key, maxRetries: 0, timeout: 30000 });

  const { data: created, response } = await client.responses.create({ model, input: 'Remember this.' }).withResponse();
  const creator = routing(response).served_by;

  for (let i = 0; i < 2; i++) {
    const { data: got, response: r } = await client.responses.retrieve(created.id).withResponse();
    eq(routing(r).served_by, creator, `retrieve ${i}: x-aisix-served-by`);
    eq(got.id, created.id, `retrieve ${i}: id`);
    eq(got.output_text, text, `retrieve ${i}: output_text`);
  }

  const { data: cancelled, response: cresp } = await client.responses.cancel(created.id).withResponse();
  eq(routing(cresp).served_by, creator, 'cancel: x-aisix-served-by');
  eq(cancelled.id, created.id, 'cancel: id');
  eq(cancelled.status, 'cancelled', 'cancel: status');

  const dresp = await client.responses.delete(created.id).asResponse();
  eq(dresp.status, 200, 'delete: status');
  eq(routing(dresp).served_by, creator, 'delete: x-aisix-served-by');

  return { model, id: created.id, creator };
});
