// Packages the raw chart (src/render/chart.ts) into .cache/chart/chart.tgz and its Helm config JSON,
// which the bundle embeds. Reproducible: fixed tar metadata and gzip settings, so every replica of the
// extension serves the same digests.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { chartFiles, CHART } from '../src/render/chart.ts';
import { tar } from '../src/render/tar.ts';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
mkdirSync('.cache/chart', { recursive: true });
const archive = tar(chartFiles(version).map((f) => ({ name: f.name, content: new TextEncoder().encode(f.content) })));
writeFileSync('.cache/chart/chart.tgz', gzipSync(archive, { level: 9 }));
writeFileSync('.cache/chart/config.json', JSON.stringify({ name: CHART.name, version, apiVersion: 'v2', type: 'application' }));
console.log(`.cache/chart/chart.tgz: ${CHART.name} ${version}`);
