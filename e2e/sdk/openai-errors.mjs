// OpenAI SDK: the gateway's errors on every OpenAI-wire endpoint raise the
// SDK's typed errors (retries off): 401 AuthenticationError for a wrong
// caller key, 403 PermissionDeniedError for a model the key may not use,
// 404 NotFoundError for an unknown model or response id, and 400 BadRequestError for
// embeddings on a model none of whose targets serves them.
// env: AISIX_LIMITED_KEY (not allowed AISIX_FORBIDDEN_MODEL),
// AISIX_NO_EMBEDDINGS_MODEL.
import OpenAI from 'openai';
import { base, key, need, check, eq, main } from './lib.mjs';

const make = (apiKey) => new OpenAI({ baseURL: base + '/v1', apiKey, maxRetries: 0, timeout: 30000 });

const calls = {
  chat: (c, model) => c.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] }),
  embeddings: (c, model) => c.embeddings.create({ model, input: 'hi' }),
  completions: (c, model) => c.completions.create({ model, prompt: 'hi' }),
  responses: (c, model) => c.responses.create({ model, input: 'hi' }),
  'responses (stream)': async (c, model) => {
    const s = await c.responses.create({ model, input: 'hi', stream: true });
    for await (const ev of s) void ev;
  },
};

async function expectError(what, call, cls, status) {
  let err = null;
  try {
    await call();
  } catch (e) {
    err = e;
  }
  check(err, `${what}: no error`);
  if (!(err instanceof cls)) {
    throw new Error(`${what}: got ${err.constructor.name} (status ${err.status}, body ${JSON.stringify(err.error)}): ${err.message}; want ${cls.name}`);
  }
  eq(err.status, status, `${what}: status`);
  check(typeof err.error?.message === 'string' && err.error.message !== '', `${what}: the OpenAI error envelope's message`, err.error);
  check(err.headers.get('x-aisix-call-id'), `${what}: no x-aisix-call-id`);
  return err;
}

main(async () => {
  const forbidden = need('AISIX_FORBIDDEN_MODEL');
  const good = make(key);
  const wrong = make('sk-not-a-caller-key');
  const limited = make(need('AISIX_LIMITED_KEY'));
  const seen = [];
  for (const [name, call] of Object.entries(calls)) {
    await expectError(`${name}: wrong key`, () => call(wrong, forbidden), OpenAI.AuthenticationError, 401);
    await expectError(`${name}: model not allowed`, () => call(limited, forbidden), OpenAI.PermissionDeniedError, 403);
    await expectError(`${name}: unknown model`, () => call(good, 'no-such-model-e2e'), OpenAI.NotFoundError, 404);
    seen.push(name);
  }
  await expectError('retrieve of a response id aisix never relayed', () => good.responses.retrieve('resp_never_made_e2e'), OpenAI.NotFoundError, 404);
  await expectError('delete of a response id aisix never relayed', () => good.responses.delete('resp_never_made_e2e'), OpenAI.NotFoundError, 404);
  const err = await expectError('embeddings on a model without an embeddings target',
    () => good.embeddings.create({ model: need('AISIX_NO_EMBEDDINGS_MODEL'), input: 'hi' }), OpenAI.BadRequestError, 400);
  return { endpoints: seen, no_embeddings: err.error?.message, no_embeddings_attempts: err.headers.get('x-aisix-attempts') };
});
