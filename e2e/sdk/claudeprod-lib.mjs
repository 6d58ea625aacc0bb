// Shared by the claude-prod scripts (e2e/claudeprod_test.go): the tool the
// caller offers, and the routing headers checked against what the Go test
// expects: x-aisix-served-by exactly, x-aisix-attempts against a regular
// expression (the whole trail: which targets were tried, and how each ended).
// env: AISIX_SERVED_BY, AISIX_TRAIL.
import { need, check, eq, routing } from './lib.mjs';

export const weather = {
  name: 'get_weather',
  description: 'Get the current weather in a given location',
  schema: {
    type: 'object',
    properties: { location: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
    required: ['location'],
  },
};

export function checkRoute(response, what) {
  const r = routing(response);
  eq(r.served_by, need('AISIX_SERVED_BY'), `${what}: x-aisix-served-by (attempts ${r.attempts})`);
  check(r.call_id, `${what}: no x-aisix-call-id header`);
  const trail = new RegExp(need('AISIX_TRAIL'));
  check(trail.test(r.attempts ?? ''), `${what}: x-aisix-attempts ${r.attempts}: want it to match ${trail}`);
  return r;
}
