// Anthropic SDK: the gateway's errors raise the SDK's typed errors (SDK
// retries off, so none is hidden): 400 BadRequestError, 401
// AuthenticationError (x-api-key and Bearer), 403 PermissionDeniedError,
// 404 NotFoundError, 429 RateLimitError with retry-after, 529
// OverloadedError (an InternalServerError in this SDK version).
// env: AISIX_LIMITED_KEY (may call only other models than
// AISIX_FORBIDDEN_MODEL), AISIX_RATE_LIMITED_MODEL, AISIX_OVERLOADED_MODEL.
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

main(async () => {
  const limitedKey = need('AISIX_LIMITED_KEY');
  const forbidden = need('AISIX_FORBIDDEN_MODEL');
  const limited = need('AISIX_RATE_LIMITED_MODEL');
  const overloadedModel = need('AISIX_OVERLOADED_MODEL');
  const good = client(key);
  const out = {};

  await expectError('400 missing model', () => good.messages.create({ max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] }),
    Anthropic.BadRequestError, 400, 'invalid_request_error');
  out.bad_request = true;

  await expectError('401 wrong x-api-key', () => new Anthropic({ baseURL: base, apiKey: 'sk-not-a-caller-key', maxRetries: 0 }).messages.create(ask(forbidden)),
    Anthropic.AuthenticationError, 401, 'authentication_error');
  await expectError('401 wrong bearer', () => new Anthropic({ baseURL: base, apiKey: null, authToken: 'sk-not-a-caller-key', maxRetries: 0 }).messages.create(ask(forbidden)),
    Anthropic.AuthenticationError, 401, 'authentication_error');
  out.authentication = true;

  await expectError('403 model not allowed for the key', () => client(limitedKey).messages.create(ask(forbidden)),
    Anthropic.PermissionDeniedError, 403, 'permission_error');
  out.permission = true;

  await expectError('404 unknown model', () => good.messages.create(ask('no-such-model-e2e')),
    Anthropic.NotFoundError, 404, 'not_found_error');
  out.not_found = true;

  const rl = await expectError('429 upstream rate limit', () => good.messages.create(ask(limited)),
    Anthropic.RateLimitError, 429, 'rate_limit_error');
  const retryAfter = rl.headers?.get('retry-after');
  check(retryAfter && Number(retryAfter) > 0, '429: want a retry-after header of seconds', retryAfter);
  out.rate_limit_retry_after = retryAfter;

  const ov = await expectError('529 upstream overloaded', () => good.messages.create(ask(overloadedModel)),
    Anthropic.OverloadedError, 529, 'overloaded_error');
  check(ov instanceof Anthropic.InternalServerError, '529: OverloadedError is an InternalServerError in this SDK');
  out.overloaded = ov.constructor.name;

  return out;
});
