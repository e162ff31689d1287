// The images a real node runs, built here into OCI archives from the components (Go module proxy and
// Debian) and imported into each node's containerd as an air-gapped node image pre-loads them. Each
// reproduces its upstream image as that image's own build declares it:
// - registry.k8s.io/pause: kubernetes build/pause/Dockerfile (FROM scratch, /pause, USER 65535:65535,
//   ENTRYPOINT ["/pause"]), the binary from build/pause/linux/pause.c as its Makefile builds it.
// - docker.io/library/registry: distribution/distribution-library-image's Dockerfile (alpine: /bin/sh,
//   /bin/registry, /etc/distribution/config.yml, /entrypoint.sh as ENTRYPOINT, CMD the config file,
//   OTEL_TRACES_EXPORTER=none, VOLUME /var/lib/registry, EXPOSE 5000); Debian's busybox-static stands in
//   for alpine's busybox as /bin/sh.
// - ghcr.io/regclient/regbot: regclient's build/Dockerfile.regbot, target release-scratch (/regbot,
//   /etc/passwd and /etc/group with appuser 1000, the CA bundle, /home/appuser/.docker, /tmp 1777,
//   /usr/local/bin, /lua-mods, LUA_PATH, USER appuser, ENTRYPOINT ["/regbot"]). Its two Lua libraries
//   downloaded from GitHub at build time are left out (no package registry has them; the chart runs none).
// - docker.io/library/busybox: the local-path provisioner's helper (mkdir and rm of a volume's folder).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { dir, ociImage } from '../../../scripts/lib/oci.mjs';
import { components } from './components.ts';
import { workDir } from './base.ts';

/** The default PATH BuildKit writes into an image that sets none. */
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const text = (s: string) => new TextEncoder().encode(s);
const file = (name: string, content: Uint8Array, mode = 0o644) => ({ name, content, mode });
const exe = (name: string, path: string) => file(name, readFileSync(path), 0o755);
const caBundle = () => text(existsSync('/etc/ssl/certs/ca-certificates.crt') ? readFileSync('/etc/ssl/certs/ca-certificates.crt', 'utf8') : '');

export interface NodeImage { name: string; archive: string; digest: string }

/** What the registry image's entrypoint does: a config file argument means `registry serve FILE`. */
const REGISTRY_ENTRYPOINT = `#!/bin/sh
set -e
case "$1" in
  *.yaml|*.yml) set -- registry serve "$@" ;;
  serve|garbage-collect|help|-*) set -- registry "$@" ;;
esac
exec "$@"
`;
const REGISTRY_DEFAULT_CONFIG = `version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`;

/** The infrastructure images (pause, registry, regbot, busybox), built once per test process. */
export function infrastructureImages(): NodeImage[] {
  const c = components();
  const busybox = c.busybox.path;
  const out = workDir('node-images');
  const write = (short: string, img: ReturnType<typeof ociImage>, name: string): NodeImage => {
    const archive = join(out, `${short}.oci.tar`);
    if (!existsSync(archive)) writeFileSync(archive, img.archive);
    return { name, archive, digest: img.digest };
  };
  const pauseName = `registry.k8s.io/pause:${c.nodeKube.pause.tag}`;
  const registryName = `docker.io/library/registry:${c.registry.version.replace(/^v/, '')}`;
  const regbotName = `ghcr.io/regclient/regbot:${c.regbot.version}`;
  return [
    write('pause', ociImage({ name: pauseName, refName: c.nodeKube.pause.tag, level: 1,
      entries: [exe('pause', c.nodeKube.pause.path)],
      config: { User: '65535:65535', Entrypoint: ['/pause'], Env: [DEFAULT_PATH] } }), pauseName),
    write('registry', ociImage({ name: registryName, refName: c.registry.version, level: 1,
      entries: [
        dir('bin'), exe('bin/sh', busybox), exe('bin/registry', c.registry.path),
        file('entrypoint.sh', text(REGISTRY_ENTRYPOINT), 0o755),
        dir('etc'), dir('etc/distribution'), file('etc/distribution/config.yml', text(REGISTRY_DEFAULT_CONFIG)),
        dir('etc/ssl'), dir('etc/ssl/certs'), file('etc/ssl/certs/ca-certificates.crt', caBundle()),
        dir('tmp', 0o1777), dir('var'), dir('var/lib'), dir('var/lib/registry'),
      ],
      config: { Env: [DEFAULT_PATH, 'OTEL_TRACES_EXPORTER=none'], Entrypoint: ['/entrypoint.sh'], Cmd: ['/etc/distribution/config.yml'],
        ExposedPorts: { '5000/tcp': {} }, Volumes: { '/var/lib/registry': {} } } }), registryName),
    write('regbot', ociImage({ name: regbotName, refName: c.regbot.version, level: 1,
      entries: [
        exe('regbot', c.regbot.path),
        dir('etc'), file('etc/passwd', text('root:x:0:0:root:/root:/bin/sh\nappuser:x:1000:1000:Linux User,,,:/home/appuser:/sbin/nologin\n')),
        file('etc/group', text('root:x:0:root\nappuser:x:1000:appuser\n')),
        dir('etc/ssl'), dir('etc/ssl/certs'), file('etc/ssl/certs/ca-certificates.crt', caBundle()),
        dir('home'), dir('home/appuser'), dir('home/appuser/.docker'), dir('lua-mods'),
        dir('tmp', 0o1777), dir('usr'), dir('usr/local'), dir('usr/local/bin'),
      ],
      config: { User: 'appuser', Entrypoint: ['/regbot'], Env: [DEFAULT_PATH, 'LUA_PATH=?;?.lua;/lua-user/?;/lua-user/?.lua;/lua-mods/?;/lua-mods/?.lua'] } }), regbotName),
    write('busybox', ociImage({ name: BUSYBOX_IMAGE, refName: 'helper', level: 1,
      entries: [dir('bin'), ...['sh', 'mkdir', 'chmod', 'rm', 'sleep'].map((a) => exe(`bin/${a}`, busybox)), dir('tmp', 0o1777)],
      config: { Env: [DEFAULT_PATH], Cmd: ['sh'] } }), BUSYBOX_IMAGE),
  ];
}

export const BUSYBOX_IMAGE = 'docker.io/library/busybox:capi-registry-addon-helper';

/**
 * A workload image (pushed by the test, pulled by kubelets through the mirror): a long-running program
 * and a file naming it. `name`: the image name its oci-archive carries; `padding`: bytes of incompressible
 * data in one more file (transfer figures).
 */
export function appImage(label: string, opts: { name?: string; padding?: number } = {}) {
  const c = components();
  return ociImage({ name: opts.name ?? `app:${label}`, refName: label, level: 1,
    entries: [exe('app', c.nodeKube.pause.path), file('label.txt', text(`${label}\n`)), ...(opts.padding ? [file('padding.bin', randomBytes(opts.padding))] : [])],
    config: { Entrypoint: ['/app'], Env: [DEFAULT_PATH] } });
}

/** Images as an installer carries them: an OCI image layout directory holding all of `builds`. */
export function writeLayoutDirectory(dir: string, builds: ReturnType<typeof appImage>[]): void {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const manifests = builds.flatMap((b) => JSON.parse(b.index.toString()).manifests);
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
  for (const b of builds) for (const blob of b.blobs) writeFileSync(join(dir, blob.name), blob.content);
}
