// regsync (github.com/regclient/regclient/cmd/regsync), run as the sidecar runs it.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { components } from './components.ts';
import { workDir } from './base.ts';

export function regsync(name: string, command: 'once' | 'check' | 'config', config: string, env: Record<string, string> = {}) {
  const dir = workDir('regsync', name);
  const file = join(dir, 'regsync.yml');
  writeFileSync(file, config);
  const r = spawnSync(components().regsync.path, [command, '-c', file, '-v', 'info'], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { PATH: process.env.PATH ?? '', HOME: dir, ...env },
  });
  return { ok: r.status === 0, status: r.status, output: `${r.stdout}${r.stderr}` };
}
