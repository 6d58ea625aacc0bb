// Anthropic SDK: messages.countTokens, answered by the upstream for an
// Anthropic target and estimated for an OpenAI one.
// env: AISIX_MODEL (Anthropic targets, failing primary AISIX_PRIMARY,
// served by AISIX_SERVED_BY), AISIX_UPSTREAM_COUNT (what the upstream
// answers), AISIX_ESTIMATE_MODEL (OpenAI targets), AISIX_MIXED_MODEL
// (optional: a failing Anthropic primary, then an OpenAI target).
import { key, need, env, check, eq, checkServed, routing, main } from './lib.mjs';
import { client } from './anthropic-lib.mjs';

main(async () => {
  const model = need('AISIX_MODEL');
  const estimateModel = need('AISIX_ESTIMATE_MODEL');
  const want = Number(need('AISIX_UPSTREAM_COUNT'));
  const anthropic = client(key);
  const params = {
    system: 'You are a scientist',
    messages: [{ role: 'user', content: 'Hello, Claude. Please explain photosynthesis in two sentences.' }],
  };

  const { data: counted, response } = await anthropic.messages.countTokens({ model, ...params }).withResponse();
  const served = checkServed(response, need('AISIX_SERVED_BY'), `countTokens ${model}`);
  eq(counted, { input_tokens: want }, `countTokens ${model}: the upstream's count`);

  const { data: est, response: eresp } = await anthropic.messages.countTokens({ model: estimateModel, ...params }).withResponse();
  const mixed = env('AISIX_MIXED_MODEL');
  let mixedServed = null;
  if (mixed) {
    // An Anthropic primary that fails, then an OpenAI target: its estimate.
    const { data: m, response: mresp } = await anthropic.messages.countTokens({ model: mixed, ...params }).withResponse();
    mixedServed = routing(mresp);
    check(Number.isInteger(m.input_tokens) && m.input_tokens > 0 && m.input_tokens !== want,
      `countTokens ${mixed}: want the estimate (a positive integer, not the Anthropic counter's ${want})`, m);
  }
  check(Number.isInteger(est.input_tokens) && est.input_tokens > 0, `countTokens ${estimateModel}: want a positive integer estimate`, est);

  return { model, upstream: counted.input_tokens, routing: served, estimate: est.input_tokens, estimate_routing: routing(eresp), mixed: mixedServed };
});
