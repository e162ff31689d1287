// `seed`'s inputs: OCI layouts as directories and oci-archives (tar), checked whole before anything is
// pushed; the mirror's names for image names; the push order.
import { mkdirSync, mkdtempSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ociImage } from '../../scripts/lib/oci.mjs';
import { ArchiveError, openLayout } from '../../src/seed/archive.ts';
import { mirrorReference, planLayout } from '../../src/seed/plan.ts';
import { tar } from '../../src/render/tar.ts';

const test = suite('seed inputs');
const work = mkdtempSync(join(tmpdir(), 'seed-unit-'));
const image = (name: string, refName = '1.0') => ociImage({ name, refName, entries: [{ name: 'hello.txt', content: new TextEncoder().encode(`${name}\n`) }], config: {} });
const refusal = async (path: string) => {
  try {
    await planLayout(await openLayout(path));
  } catch (err) {
    if (err instanceof ArchiveError) return err.message;
    throw err;
  }
  return 'accepted';
};

test('image names: the mirror keeps the path without the host; Docker Hub one-word names get library/; nonsense is refused', () => {
  assert.equal(mirrorReference('docker.io/library/app:1.0'), { repository: 'library/app', tag: '1.0' });
  assert.equal(mirrorReference('nginx:1.27'), { repository: 'library/nginx', tag: '1.27' });
  assert.equal(mirrorReference('quay.io/corp/app:v2'), { repository: 'corp/app', tag: 'v2' });
  assert.equal(mirrorReference('registry.example:5000/team/tool'), { repository: 'team/tool' });
  assert.equal(mirrorReference(`ghcr.io/x/y:1@sha256:${'a'.repeat(64)}`), { repository: 'x/y', tag: '1' });
  for (const bad of ['UPPER/case:1', 'app:bad tag', '../etc/passwd', '']) assert.is(mirrorReference(bad), undefined, bad);
});

test('an oci-archive and the same layout as a directory give the same plan: blobs, then the tag', async () => {
  const built = image('docker.io/library/app:1.0');
  const archive = join(work, 'app.oci.tar');
  writeFileSync(archive, built.archive);
  const dir = join(work, 'app-layout');
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(dir, 'index.json'), built.index);
  for (const b of built.blobs) writeFileSync(join(dir, b.name), b.content);
  const fromTar = await planLayout(await openLayout(archive));
  const fromDir = await planLayout(await openLayout(dir));
  assert.equal(fromTar, fromDir);
  assert.is(fromTar.length, 1);
  assert.is(fromTar[0]!.repository, 'library/app');
  assert.is(fromTar[0]!.tag, '1.0');
  assert.is(fromTar[0]!.top.digest, built.digest);
  assert.equal(fromTar[0]!.blobs.map((b) => b.digest).sort(), [built.blobs[0]!.name, built.blobs[1]!.name].map((n) => n.replace('blobs/sha256/', 'sha256:')).sort());
});

test('refused before anything is pushed, the file named: truncated, not a tar, a missing blob, a bare tag without --repository', async () => {
  const built = image('docker.io/library/app:2.0');
  const cut = join(work, 'cut.oci.tar');
  writeFileSync(cut, built.archive);
  truncateSync(cut, Math.floor(built.archive.length / 2));
  assert.match(await refusal(cut), new RegExp(`^${cut}: truncated`));
  const endless = join(work, 'no-end.oci.tar');
  writeFileSync(endless, built.archive.subarray(0, built.archive.length - 1024));
  assert.match(await refusal(endless), /truncated \(ends at byte \d+ inside a header, before the end-of-archive marker\)/);
  const garbage = join(work, 'garbage.tar');
  writeFileSync(garbage, Buffer.alloc(2048, 7));
  assert.match(await refusal(garbage), /not a tar archive, or damaged/);
  const missing = join(work, 'missing.oci.tar');
  const layer = built.blobs.find((b) => b.content === built.layer)!;
  writeFileSync(missing, tar([{ name: 'index.json', content: built.index }, ...built.blobs.filter((b) => b !== layer)]));
  assert.match(await refusal(missing), /library\/app:2\.0: sha256:[a-f0-9]{64} is not in the archive/);
  const bare = join(work, 'bare.oci.tar');
  const index = JSON.parse(built.index.toString());
  delete index.manifests[0].annotations['io.containerd.image.name'];
  writeFileSync(bare, tar([{ name: 'index.json', content: Buffer.from(JSON.stringify(index)) }, ...built.blobs]));
  assert.match(await refusal(bare), /has only the tag "1\.0" in index\.json: give --repository REPO/);
  assert.is((await planLayout(await openLayout(bare), 'corp/app'))[0]!.repository, 'corp/app');
});

test.run();
