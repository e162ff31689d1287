// What `seed` pushes for each image of a layout: where the mirror keeps it (repository and tag, as
// containerd asks the mirror for it), and its blobs and manifests in push order: blobs, then child
// manifests by digest, then the tag last, so no tag ever names content that is not all there.
import { ArchiveError, type BlobSource, type Descriptor, type ImageLayout } from './archive.ts';

export interface ImagePlan {
  /** As the archive names it, for messages. */
  name: string;
  repository: string;
  /** undefined: pushed by digest only. */
  tag?: string;
  top: Descriptor;
  blobs: Descriptor[];
  /** Child manifests (an index's platforms), pushed by digest before the top one. */
  children: Descriptor[];
}

const INDEX_TYPES = ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'];
const MANIFEST_TYPES = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'];
const REPOSITORY = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/**
 * The mirror's repository and tag for an image name: the registry host is dropped (containerd asks the
 * mirror for the path only), Docker Hub's one-word names get `library/`. undefined when it is not a name.
 */
export function mirrorReference(name: string): { repository: string; tag?: string } | undefined {
  const withoutDigest = name.replace(/@sha256:[a-f0-9]{64}$/, '');
  const parts = withoutDigest.split('/');
  const first = parts[0]!;
  const hasHost = parts.length > 1 && /^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?(:[0-9]+)?$/.test(first) && (first.includes('.') || first.includes(':') || first === 'localhost');
  const host = hasHost ? parts.shift()! : 'docker.io';
  const last = parts.pop() ?? '';
  const colon = last.lastIndexOf(':');
  const tag = colon >= 0 ? last.slice(colon + 1) : undefined;
  parts.push(colon >= 0 ? last.slice(0, colon) : last);
  if (['docker.io', 'index.docker.io', 'registry-1.docker.io'].includes(host) && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  if (!REPOSITORY.test(repository) || repository.length > 255 || (tag !== undefined && !TAG.test(tag))) return undefined;
  return { repository, ...(tag !== undefined ? { tag } : {}) };
}

/** The name an index.json entry gives its image: containerd's full name, else the OCI ref name (with `repository` for a bare tag). */
function entryName(d: Descriptor, repository: string | undefined, where: string): string {
  const full = d.annotations?.['io.containerd.image.name'];
  const ref = d.annotations?.['org.opencontainers.image.ref.name'];
  if (full) return full;
  if (ref && (ref.includes('/') || ref.includes(':') || ref.includes('@'))) return ref;
  if (ref && repository) return `${repository}:${ref}`;
  throw new ArchiveError(`${where}: the image ${d.digest} has ${ref ? `only the tag ${JSON.stringify(ref)}` : 'no name'} in index.json: give --repository REPO (the mirror's path, e.g. library/app)`);
}

/** Every image in a layout, checked whole (every blob and manifest present at its size) before anything is pushed. */
export async function planLayout(layout: ImageLayout, repository?: string): Promise<ImagePlan[]> {
  const entries = layout.index.manifests ?? [];
  if (!entries.length) throw new ArchiveError(`${layout.path}: index.json lists no image`);
  const plans: ImagePlan[] = [];
  for (const top of entries) {
    const name = entryName(top, repository, layout.path);
    const where = mirrorReference(name);
    if (!where) throw new ArchiveError(`${layout.path}: ${JSON.stringify(name)} is not an image name the mirror can hold`);
    const blobs: Descriptor[] = [];
    const children: Descriptor[] = [];
    await walk(layout, top, name, blobs, children, 0);
    plans.push({ name, ...where, top, blobs: dedupe(blobs), children: dedupe(children) });
  }
  return plans;
}

async function walk(layout: BlobSource & { path: string }, d: Descriptor, name: string, blobs: Descriptor[], children: Descriptor[], depth: number): Promise<void> {
  present(layout, d, name);
  if (depth > 2) throw new ArchiveError(`${layout.path}: ${name}: manifests nested deeper than an index of images`);
  let doc: { mediaType?: string; manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
  try {
    doc = JSON.parse((await layout.bytes(d.digest)).toString('utf8'));
  } catch (err) {
    if (err instanceof ArchiveError) throw err;
    throw new ArchiveError(`${layout.path}: ${name}: the manifest ${d.digest} is not JSON`);
  }
  const type = d.mediaType ?? doc.mediaType ?? '';
  if (INDEX_TYPES.includes(type) || Array.isArray(doc.manifests)) {
    for (const child of doc.manifests ?? []) {
      await walk(layout, child, name, blobs, children, depth + 1);
      children.push(child);
    }
    return;
  }
  if (!MANIFEST_TYPES.includes(type) && !doc.config) throw new ArchiveError(`${layout.path}: ${name}: ${d.digest} is neither an image manifest nor an index (${type || 'no media type'})`);
  for (const b of [doc.config, ...(doc.layers ?? [])]) {
    if (!b) continue;
    present(layout, b, name);
    blobs.push(b);
  }
}

function present(layout: BlobSource & { path: string }, d: Descriptor, name: string): void {
  const size = layout.size(d.digest);
  if (size === undefined) throw new ArchiveError(`${layout.path}: ${name}: ${d.digest} is not in the archive (an index naming platforms it does not carry, or a damaged archive)`);
  if (size !== d.size) throw new ArchiveError(`${layout.path}: ${name}: ${d.digest} is ${size} bytes in the archive, ${d.size} in its descriptor (damaged archive)`);
}

const dedupe = (ds: Descriptor[]) => [...new Map(ds.map((d) => [d.digest, d])).values()];
