// Shared by the SDK scenario scripts: configuration from the environment,
// assertions that fail with a clear message, and the JSON summary on stdout.
// e2e/sdk_test.go runs each script against a gateway it started.

import { inspect, isDeepStrictEqual } from 'node:util';

export const base = need('AISIX_BASE_URL'); // http://host:port of the proxy
export const key = need('AISIX_KEY'); // the caller key

export function need(name) {
  const v = process.env[name];
  if (v === undefined || v === '') {
    throw new Error(`environment variable ${name} is not set`);
  }
  return v;
}

export function env(name, fallback) {
  const v = process.env[name];
  return v === undefined || v === '' ? fallback : v;
}

const show = (v) => inspect(v, { depth: 6, breakLength: Infinity });

export function check(cond, what, got) {
  if (!cond) {
    throw new Error(`${what}${got === undefined ? '' : `; got ${show(got)}`}`);
  }
}

// eq asserts deep equality (object keys in any order, arrays in order).
export function eq(got, want, what) {
  if (!isDeepStrictEqual(got, want)) {
    throw new Error(`${what}: got ${show(got)}, want ${show(want)}`);
  }
}

// aisix's routing headers of a fetch Response (the SDKs' withResponse()).
export function routing(response) {
  return {
    served_by: response.headers.get('x-aisix-served-by'),
    attempts: response.headers.get('x-aisix-attempts'),
    call_id: response.headers.get('x-aisix-call-id'),
  };
}

// checkServed asserts the routing headers: served by want, a call id,
// and, when AISIX_PRIMARY names the group's failing primary, an attempts
// trail that tried it first and ended on want (a failover in this call);
// with { direct: true }, a trail of want alone (a call routed straight to
// the target that holds its state).
export function checkServed(response, want, what, { direct = false } = {}) {
  const r = routing(response);
  eq(r.served_by, want, `${what}: x-aisix-served-by (attempts ${r.attempts})`);
  check(r.call_id, `${what}: no x-aisix-call-id header`);
  check(r.attempts, `${what}: no x-aisix-attempts header`);
  const primary = env('AISIX_PRIMARY');
  if (direct) {
    eq(r.attempts, want + '=200', `${what}: x-aisix-attempts (straight to the target that made the response)`);
  } else if (primary) {
    check(r.attempts.startsWith(primary + '=') && r.attempts.endsWith(',' + want + '=200'),
      `${what}: x-aisix-attempts ${r.attempts}: want ${primary} tried first and ${want}=200 last`);
  }
  return r;
}

// main runs the scenario and prints its summary as one JSON line; any
// error exits 1 with the error (and an SDK error's status and body) on stderr.
export async function main(scenario) {
  try {
    const summary = await scenario();
    process.stdout.write(JSON.stringify(summary) + '\n');
  } catch (err) {
    process.stderr.write(`FAIL: ${err?.stack ?? err}\n`);
    if (err?.status !== undefined) {
      process.stderr.write(`status ${err.status}; body ${show(err.error)}; headers ${show(err.headers && Object.fromEntries(err.headers))}\n`);
    }
    process.exit(1);
  }
}
