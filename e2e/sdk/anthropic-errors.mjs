// Anthropic SDK: the gateway's errors raise the SDK's typed errors (SDK
// retries off, so none is hidden). AISIX_ERROR_CASE picks one:
//   bad_request     400 BadRequestError (no model)
//   authentication  401 AuthenticationError (a wrong x-api-key, a wrong Bearer)
//   permission      403 PermissionDeniedError (a key not allowed the model)
//   not_found       404 NotFoundError (an unknown model)
//   rate_limit      429 RateLimitError with retry-after (the upstream's 429)
//   overloaded      529 OverloadedError, an InternalServerError in this SDK
//                   version (the upstream's 529)
// env: AISIX_LIMITED_KEY (not allowed AISIX_FORBIDDEN_MODEL),
// AISIX_RATE_LIMITED_MODEL, AISIX_OVERLOADED_MODEL.
import Anthropic from '@anthropic-ai/sdk';
import { base, key, need, check, eq, main } from './lib.mjs';
import { client } from './anthropic-lib.mjs';

const ask = (model) => ({ model, max_tokens: 64, messages: [{ role: 'user', content: 'Hello, Claude' }] });

async function expectError(what, call, cls, status, type) {
  let err = null;
  try {
    const got = await call();
    throw new Error(`${what}: no error; got ${JSON.stringify(got)}`);
  } catch (e) {
    err = e;
  }
  if (!(err instanceof cls)) {
    throw new Error(`${what}: got ${err?.constructor?.name} (status ${err?.status}, body ${JSON.stringify(err?.error)}): ${err?.message}; want ${cls.name}`);
  }
  check(err instanceof Anthropic.APIError, `${what}: not an APIError`);
  eq(err.status, status, `${what}: status`);
  eq(err.error?.type, 'error', `${what}: envelope type`);
  eq(err.error?.error?.type, type, `${what}: error.type`);
  check(typeof err.error?.error?.message === 'string' && err.error.error.message !== '', `${what}: error.message`, err.error);
  return err;
}

const cases = {
  async bad_request(good) {
    await expectError('400 missing model', () => good.messages.create({ max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] }),
      Anthropic.BadRequestError, 400, 'invalid_request_error');
    return {};
  },
  async authentication() {
    const model = need('AISIX_FORBIDDEN_MODEL');
    await expectError('401 wrong x-api-key', () => new Anthropic({ baseURL: base, apiKey: 'sk-not-a-caller-key', maxRetries: 0 }).messages.create(ask(model)),
      Anthropic.AuthenticationError, 401, 'authentication_error');
    await expectError('401 wrong bearer', () => new Anthropic({ baseURL: base, apiKey: null, authToken: 'sk-not-a-caller-key', maxRetries: 0 }).messages.create(ask(model)),
      Anthropic.AuthenticationError, 401, 'authentication_error');
    await expectError('401 no key', () => new Anthropic({ baseURL: base, apiKey: null, maxRetries: 0, defaultHeaders: { 'x-api-key': null, authorization: null } }).messages.create(ask(model)),
      Anthropic.AuthenticationError, 401, 'authentication_error');
    return {};
  },
  async permission() {
    await expectError('403 model not allowed for the key', () => client(need('AISIX_LIMITED_KEY')).messages.create(ask(need('AISIX_FORBIDDEN_MODEL'))),
      Anthropic.PermissionDeniedError, 403, 'permission_error');
    return {};
  },
  async not_found(good) {
    await expectError('404 unknown model', () => good.messages.create(ask('no-such-model-e2e')), Anthropic.NotFoundError, 404, 'not_found_error');
    return {};
  },
  async rate_limit(good) {
    const err = await expectError('429 upstream rate limit', () => good.messages.create(ask(need('AISIX_RATE_LIMITED_MODEL'))),
      Anthropic.RateLimitError, 429, 'rate_limit_error');
    const retryAfter = err.headers?.get('retry-after');
    check(retryAfter && Number(retryAfter) > 0, '429: want a retry-after header of seconds', retryAfter);
    return { retry_after: retryAfter };
  },
  async overloaded(good) {
    const err = await expectError('529 upstream overloaded', () => good.messages.create(ask(need('AISIX_OVERLOADED_MODEL'))),
      Anthropic.OverloadedError, 529, 'overloaded_error');
    check(err instanceof Anthropic.InternalServerError, '529: OverloadedError is an InternalServerError in this SDK');
    return { class: err.constructor.name };
  },
};

main(async () => {
  const name = need('AISIX_ERROR_CASE');
  check(cases[name], `AISIX_ERROR_CASE ${name}: want one of ${Object.keys(cases).join(', ')}`);
  const out = await cases[name](client(key));
  return { case: name, ...out };
});
