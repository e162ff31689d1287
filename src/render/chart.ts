// The small raw chart CAAPH installs: it renders whatever manifests its values carry. Built into the
// bundle at build time (scripts/build-chart.mjs) and served read-only over OCI by the extension.
import { dumpYaml } from './distribution.ts';

export const CHART = {
  name: 'capi-registry-addon-registry',
  /** OCI repository path under /v2/: `oci://<host>/charts` + chart name, as CAAPH joins them. */
  repository: 'charts/capi-registry-addon-registry',
} as const;

export const chartYaml = (version: string) =>
  dumpYaml({ apiVersion: 'v2', name: CHART.name, description: 'In-cluster OCI registry mirror installed by capi-registry-addon.', type: 'application', version });

/** The one template: every manifest of the values, as a YAML document. */
export const MANIFESTS_TEMPLATE = '{{- range .Values.manifests }}\n---\n{{ toYaml . }}\n{{- end }}\n';

export function chartFiles(version: string): { name: string; content: string }[] {
  return [
    { name: `${CHART.name}/Chart.yaml`, content: chartYaml(version) },
    { name: `${CHART.name}/values.yaml`, content: dumpYaml({ manifests: [] }) },
    { name: `${CHART.name}/templates/manifests.yaml`, content: MANIFESTS_TEMPLATE },
  ];
}

/**
 * What the chart installs: the workload objects except the Namespace (the hook creates it first, for the
 * Secrets, and CAAPH installs into it) and Secrets (written by the hook, never through Helm values).
 */
export const chartManifests = (workload: readonly Record<string, unknown>[]) =>
  workload.filter((o) => o.kind !== 'Namespace' && o.kind !== 'Secret');

/**
 * The HelmChartProxy valuesTemplate for these manifests. CAAPH runs it through Go text/template before
 * Helm sees it, so every `{{` in our data (regbot's `{{ file ... }}`) must not reach the template
 * engine: values go as JSON (strings stay strings) with `{{` written `{\u007b`, which text/template
 * leaves alone and the JSON/YAML parser decodes back to `{{` (caaph.md §6.3). Structural JSON never
 * contains `{{`, so the replacement only touches string contents.
 */
export const helmValuesTemplate = (manifests: readonly unknown[]): string => JSON.stringify({ manifests }).replaceAll('{{', '{\\u007b');

export interface OciDescriptor { mediaType: string; digest: string; size: number }

export const HELM_MEDIA = {
  config: 'application/vnd.cncf.helm.config.v1+json',
  chart: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
} as const;

/** The OCI image manifest Helm expects for a chart (config = Chart.yaml as JSON, one layer = the .tgz). */
export const chartManifest = (config: OciDescriptor, layer: OciDescriptor): string =>
  JSON.stringify({ schemaVersion: 2, mediaType: HELM_MEDIA.manifest, config, layers: [layer] });
