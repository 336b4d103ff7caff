import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

/** Retries `probe` until its text contains `expected` (a server may still be starting); fails with the last answer. */
export async function eventually(probe: () => Promise<string>, expected: string, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    last = await probe().catch((err: unknown) => String(err));
    if (last.includes(expected)) return last;
    await sleep(500);
  }
  assert.fail(`expected ${JSON.stringify(expected)}, last got ${JSON.stringify(last.slice(-500))}`);
}
