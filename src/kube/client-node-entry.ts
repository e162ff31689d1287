// The part of @kubernetes/client-node this extension uses. scripts/build.mjs bundles it on its own
// (CommonJS, ~1.4 MiB) and the main bundle embeds that as text: see client-node.ts.
export { KubeConfig, KubernetesObjectApi, PatchStrategy, setHeaderMiddleware } from '@kubernetes/client-node';
