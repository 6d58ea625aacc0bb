// The Anthropic client as a user makes it: the key as x-api-key (what the
// SDK sends for apiKey) or, with AISIX_AUTH=bearer, as Authorization: Bearer
// (the SDK's authToken).
import Anthropic from '@anthropic-ai/sdk';
import { base, env } from './lib.mjs';

export function client(apiKey, opts = {}) {
  const auth = env('AISIX_AUTH', 'x-api-key') === 'bearer' ? { apiKey: null, authToken: apiKey } : { apiKey };
  return new Anthropic({ baseURL: base, ...auth, maxRetries: 0, timeout: 30000, ...opts });
}
