// OpenAI SDK: a stored response by id: responses.retrieve, cancel and
// delete, each reaching the target that created it.
// env: AISIX_MODEL, AISIX_SERVED_BY, AISIX_EXPECT_TEXT.
import OpenAI from 'openai';
import { base, key, need, eq, checkServed, main } from './lib.mjs';

main(async () => {
  const model = need('AISIX_MODEL');
  const servedBy = need('AISIX_SERVED_BY');
  const text = need('AISIX_EXPECT_TEXT');
  const client = new OpenAI({ baseURL: base + '/v1', apiKey: key, maxRetries: 0, timeout: 30000 });

  const created = await client.responses.create({ model, input: 'Remember this.' });

  const { data: got, response } = await client.responses.retrieve(created.id).withResponse();
  checkServed(response, servedBy, 'retrieve');
  eq(got.id, created.id, 'retrieve: id');
  eq(got.output_text, text, 'retrieve: output_text');

  const { data: cancelled, response: cresp } = await client.responses.cancel(created.id).withResponse();
  checkServed(cresp, servedBy, 'cancel');
  eq(cancelled.id, created.id, 'cancel: id');
  eq(cancelled.status, 'cancelled', 'cancel: status');

  const dresp = await client.responses.delete(created.id).asResponse();
  eq(dresp.status, 200, 'delete: status');
  checkServed(dresp, servedBy, 'delete');

  return { model, id: created.id };
});
