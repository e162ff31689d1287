// esbuild's binary loader: a .wasm import is its bytes.
declare module '*.wasm' {
  const bytes: Uint8Array;
  export default bytes;
}

// The packaged chart (scripts/build-chart.mjs), embedded the same way.
declare module '*.tgz' {
  const bytes: Uint8Array;
  export default bytes;
}

// JavaScript carried as text (src/kube/client-node.ts), from esbuild's text loader.
declare module '*.jstext' {
  const text: string;
  export default text;
}

// Shell scripts for nodes (src/render/node/*.sh), embedded as text.
declare module '*.sh' {
  const text: string;
  export default text;
}
