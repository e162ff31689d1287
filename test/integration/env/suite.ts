// A uvu suite for real environments. uvu swallows an error thrown by a `before` hook (its runner
// returns from a `finally`), so a suite whose environment did not start used to end "(0 / N)" with
// no cause, and an `after` hook that then threw on the missing environment ended the whole process
// early. Here the cause is printed at once, every test of the suite fails with it, teardown errors
// are printed and swallowed, and the other suites of the process still run. Every process the failed
// environment had started is stopped at once: left running, a half-started etcd once kept the test
// process alive until the 25-minute watchdog.
import { suite, type Test } from 'uvu';
import { startMark, stopStartedSince } from './base.ts';

const describe = (err: unknown) => (err instanceof Error ? err.stack ?? err.message : String(err));

export function realSuite(name: string): Test {
  const inner = suite(name);
  let setupFailed: unknown;
  const wrapped = ((title: string, handler: (ctx: any) => unknown) =>
    inner(title, async (ctx) => {
      if (setupFailed !== undefined) throw new Error(`the suite's environment did not start: ${setupFailed instanceof Error ? setupFailed.message : String(setupFailed)}`);
      await handler(ctx);
    })) as Test;
  const before = ((fn: (ctx: any) => unknown) =>
    inner.before(async (ctx) => {
      const mark = startMark();
      try {
        await fn(ctx);
      } catch (err) {
        setupFailed = err;
        const stopped = await stopStartedSince(mark);
        console.error(`\n[${name}] environment did not start:\n${describe(err)}\n(stopped the ${stopped} process(es) it had started)\n`);
      }
    })) as Test['before'];
  before.each = inner.before.each;
  const after = ((fn: (ctx: any) => unknown) =>
    inner.after(async (ctx) => {
      try {
        await fn(ctx);
      } catch (err) {
        console.error(`\n[${name}] teardown failed:\n${describe(err)}\n`);
      }
    })) as Test['after'];
  after.each = inner.after.each;
  return Object.assign(wrapped, { before, after, only: inner.only, skip: inner.skip, run: inner.run });
}
