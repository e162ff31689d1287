// Records what a real CAPI manager sends: a TLS pass-through in front of the extension that keeps the
// first request body per hook and opt-in state. Used by the real-CAPI suite when
// RECORD_CAPI_FIXTURES=<dir> is set (`npm run fixtures:record`), to refresh test/fixtures/capi/<version>/.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { freePort } from './base.ts';

export interface Recorder {
  port: number;
  /** Writes `<hook>.<opted-in|not-opted-in>.json` (names normalized to default/my-cluster) and stops. */
  save(dir: string, rename: Record<string, string>): Promise<string[]>;
}

const optedIn = (body: string) => /"registry":/.test(body);

/** `prefer`: a Cluster name whose requests replace (once) those recorded for other Clusters. */
export async function startRecorder(target: { port: number; certFile: string; keyFile: string; ca: string }, prefer?: string): Promise<Recorder> {
  const seen = new Map<string, string>();
  const preferred = (body: string) => prefer !== undefined && body.includes(`"name":"${prefer}"`);
  const server = https.createServer({ cert: readFileSync(target.certFile), key: readFileSync(target.keyFile) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const hook = (req.url ?? '').split('?')[0]!.split('/').filter(Boolean).pop() ?? '';
      const key = hook === 'discovery' || hook === 'discover-variables' ? hook : `${hook}.${optedIn(body) ? 'opted-in' : 'not-opted-in'}`;
      if (!seen.has(key) || (preferred(body) && !preferred(seen.get(key)!))) seen.set(key, body);
      const forward = https.request({ host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers: req.headers, ca: target.ca }, (upstream) => {
        res.writeHead(upstream.statusCode ?? 502, upstream.headers);
        upstream.pipe(res);
      });
      forward.on('error', () => (res.writeHead(502), res.end()));
      forward.end(body);
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    async save(dir, rename) {
      await new Promise((resolve) => server.close(resolve));
      mkdirSync(dir, { recursive: true });
      const written: string[] = [];
      for (const [key, body] of seen) {
        if (!body) continue;
        let text = body;
        for (const [from, to] of Object.entries(rename)) text = text.split(`"${from}"`).join(`"${to}"`);
        writeFileSync(join(dir, `${key}.json`), `${JSON.stringify(JSON.parse(text))}\n`);
        written.push(key);
      }
      return written;
    },
  };
}
