// The one place that tells the runtimes apart.
import type { Adapter } from './adapter.ts';
import { serveBun } from './bun.ts';
import { serveNodeHttps } from './node-https.ts';

export type RuntimeName = 'node' | 'deno' | 'bun';

export function detectRuntime(): RuntimeName {
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  if (typeof g.Bun === 'object') return 'bun';
  if (typeof g.Deno === 'object') return 'deno';
  return 'node';
}

export const adapterFor = (runtime: RuntimeName): Adapter => (runtime === 'bun' ? serveBun : serveNodeHttps);
