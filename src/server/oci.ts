// The chart, served read-only over the OCI distribution API on the extension's own TLS port, so
// CAAPH needs no external chart repository (air gaps): oci://<service>/charts/<chart>.
import { Hono } from 'hono';
import { CHART, chartManifest, HELM_MEDIA } from '../render/chart.ts';
import { sha256Hex } from '../render/digest.ts';

export interface ChartArtifact {
  version: string;
  manifest: string;
  manifestDigest: string;
  blobs: Map<string, { bytes: Uint8Array; mediaType: string }>;
}

const digestOf = async (bytes: Uint8Array) => `sha256:${await sha256Hex(bytes)}`;

/** Builds the artifact from the embedded .tgz; digests are computed once at start. */
export async function chartArtifact(tgz: Uint8Array, version: string): Promise<ChartArtifact> {
  const config = new TextEncoder().encode(JSON.stringify({ name: CHART.name, version, apiVersion: 'v2', type: 'application' }));
  const configDesc = { mediaType: HELM_MEDIA.config, digest: await digestOf(config), size: config.length };
  const layerDesc = { mediaType: HELM_MEDIA.chart, digest: await digestOf(tgz), size: tgz.length };
  const manifest = chartManifest(configDesc, layerDesc);
  return {
    version,
    manifest,
    manifestDigest: await digestOf(new TextEncoder().encode(manifest)),
    blobs: new Map([
      [configDesc.digest, { bytes: config, mediaType: HELM_MEDIA.config }],
      [layerDesc.digest, { bytes: tgz, mediaType: HELM_MEDIA.chart }],
    ]),
  };
}

const API_VERSION_HEADER = { 'docker-distribution-api-version': 'registry/2.0' };
const notFound = (code: string, message: string) =>
  new Response(JSON.stringify({ errors: [{ code, message }] }), { status: 404, headers: { 'content-type': 'application/json', ...API_VERSION_HEADER } });

/** Routes under /v2/. Content-Length is set explicitly so HEAD answers carry the size Helm checks. */
export function ociRoutes(artifact: ChartArtifact) {
  const routes = new Hono();
  const base = `/v2/${CHART.repository}`;
  routes.get('/v2/', () => new Response('{}', { headers: { 'content-type': 'application/json', 'content-length': '2', ...API_VERSION_HEADER } }));
  routes.get(`${base}/tags/list`, (c) => c.json({ name: CHART.repository, tags: [artifact.version] }, 200, API_VERSION_HEADER));
  routes.get(`${base}/manifests/:ref`, (c) => {
    const ref = c.req.param('ref');
    if (ref !== artifact.version && ref !== artifact.manifestDigest) return notFound('MANIFEST_UNKNOWN', `no manifest ${ref}; this server has ${artifact.version}`);
    const body = new TextEncoder().encode(artifact.manifest);
    return new Response(body, {
      headers: { 'content-type': HELM_MEDIA.manifest, 'content-length': String(body.length), 'docker-content-digest': artifact.manifestDigest, ...API_VERSION_HEADER },
    });
  });
  routes.get(`${base}/blobs/:digest`, (c) => {
    const blob = artifact.blobs.get(c.req.param('digest'));
    if (!blob) return notFound('BLOB_UNKNOWN', 'no such blob');
    return new Response(blob.bytes as Uint8Array<ArrayBuffer>, {
      headers: { 'content-type': blob.mediaType, 'content-length': String(blob.bytes.length), 'docker-content-digest': c.req.param('digest'), ...API_VERSION_HEADER },
    });
  });
  routes.all('/v2/*', () => notFound('NAME_UNKNOWN', `this server holds only ${CHART.repository}`));
  return routes;
}
