// OpenAI SDK: a stored response by id: responses.retrieve (twice: a
// round_robin group would alternate), inputItems.list, cancel and delete,
// each reaching the target that created it (the other upstream does not
// know the id and answers 404); a key that may not use the model gets 404.
// env: AISIX_MODEL, AISIX_EXPECT_TEXT, AISIX_OTHER_KEY.
import OpenAI from 'openai';
import { base, key, need, check, eq, routing, main } from './lib.mjs';

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

  const items = [];
  for await (const item of client.responses.inputItems.list(created.id)) {
    items.push(item);
  }
  eq(items.map((i) => [i.type, i.role, i.content?.[0]?.text]), [['message', 'user', 'Remember this.']], 'input_items: the input');

  // Access follows the model the response was made through.
  const other = new OpenAI({ baseURL: base + '/v1', apiKey: need('AISIX_OTHER_KEY'), maxRetries: 0, timeout: 30000 });
  let denied = null;
  try {
    await other.responses.retrieve(created.id);
  } catch (e) {
    denied = e;
  }
  check(denied instanceof OpenAI.NotFoundError, `retrieve with a key not allowed ${model}: want NotFoundError (404)`, denied && `${denied.constructor.name} ${denied.status} ${denied.message}`);

  const { data: cancelled, response: cresp } = await client.responses.cancel(created.id).withResponse();
  eq(routing(cresp).served_by, creator, 'cancel: x-aisix-served-by');
  eq(cancelled.id, created.id, 'cancel: id');
  eq(cancelled.status, 'cancelled', 'cancel: status');

  const dresp = await client.responses.delete(created.id).asResponse();
  eq(dresp.status, 200, 'delete: status');
  eq(routing(dresp).served_by, creator, 'delete: x-aisix-served-by');

  return { model, id: created.id, creator };
});
