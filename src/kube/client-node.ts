// @kubernetes/client-node, evaluated on first use. The bundle carries it as text (scripts/build.mjs
// builds client-node-entry.ts to .cache/kube/client-node.jstext) rather than as code: inlined code is
// parsed and compiled when the process starts, which cost every replica ~26 MiB of idle RSS and ~50 ms
// of cold start (measured) although Clusters that have not opted in never need the API. Evaluating the
// text on demand keeps the single-file bundle and moves that cost to the first hook that needs it.
import { createRequire } from 'node:module';
import source from '../../.cache/kube/client-node.jstext';

type ClientNode = typeof import('./client-node-entry.ts');

let loaded: ClientNode | undefined;

export function clientNode(): ClientNode {
  if (!loaded) {
    const module = { exports: {} as ClientNode };
    // CommonJS wrapper: client-node's own dependencies are inside the text; `require` serves node: built-ins.
    new Function('module', 'exports', 'require', source)(module, module.exports, createRequire(import.meta.url));
    loaded = module.exports;
  }
  return loaded;
}
