// Deterministic mutation of recorded CAPI requests for the fuzz tests: byte damage, truncation,
// structural replacement with values of the wrong type, hostile sizes and nesting.

export function prng(seed: number): () => number {
  // mulberry32: small, fast, reproducible.
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export function mutator(seed: number) {
  const rand = prng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;

  const randomValue = (depth = 0): Json => {
    switch (int(depth > 2 ? 6 : 9)) {
      case 0: return null;
      case 1: return rand() < 0.5;
      case 2: return pick([0, -1, 1e308, -0, 2 ** 53 + 1, 3.14]);
      case 3: return pick(['', 'x', 'Success', 'Failure', '\u0000\uffff', '{{ .Values }}', 'a'.repeat(10_000)]);
      case 4: return [];
      case 5: return {};
      case 6: return Array.from({ length: int(4) }, () => randomValue(depth + 1));
      case 7: return Object.fromEntries(Array.from({ length: int(4) }, (_, i) => [pick(['name', 'value', 'metadata', 'spec', `k${i}`]), randomValue(depth + 1)]));
      default: return pick(['hooks.runtime.cluster.x-k8s.io/v1alpha1', 'BeforeClusterCreateRequest', 'GeneratePatchesRequest']);
    }
  };

  /** Replaces or deletes one random node of a parsed document. */
  const structural = (doc: Json): Json => {
    const paths: { parent: Json[] | Record<string, Json>; key: string | number }[] = [];
    const walk = (node: Json) => {
      if (Array.isArray(node)) node.forEach((v, i) => (paths.push({ parent: node, key: i }), walk(v)));
      else if (node && typeof node === 'object') for (const [k, v] of Object.entries(node)) paths.push({ parent: node, key: k }), walk(v);
    };
    walk(doc);
    if (!paths.length) return randomValue();
    const { parent, key } = pick(paths);
    if (rand() < 0.3 && !Array.isArray(parent)) delete (parent as Record<string, Json>)[key as string];
    else (parent as Record<string | number, Json>)[key] = randomValue();
    return doc;
  };

  const byteDamage = (text: string): string => {
    const chars = [...text];
    for (let n = 1 + int(8); n > 0; n--) chars[int(chars.length)] = String.fromCharCode(int(0x3000));
    return chars.join('');
  };

  return (base: string): string | Uint8Array => {
    switch (int(10)) {
      case 0: return base.slice(0, int(base.length));
      case 1: return byteDamage(base);
      case 2: return JSON.stringify(structural(JSON.parse(base)));
      case 3: return JSON.stringify(structural(structural(structural(JSON.parse(base)))));
      case 4: return crypto.getRandomValues(new Uint8Array(int(2000)));
      case 5: return pick(['', 'null', 'true', '0', '""', '[]', '{}', '{"kind":null}', '\ufeff{}']);
      case 6: return '['.repeat(5000 + int(50_000)) + ']'.repeat(int(2) ? 0 : 5000);
      case 7: {
        const doc = JSON.parse(base) as Record<string, Json>;
        doc[pick(['apiVersion', 'kind', 'cluster', 'items', 'variables', 'settings'])] = randomValue();
        return JSON.stringify(doc);
      }
      case 8: return base.replace(/"[^"]*"/, `"${'\\u0000'.repeat(int(20))}"`);
      default: return `${base}${pick([' ', 'x', '}', ',{}', '\n{"a":1}'])}`;
    }
  };
}
