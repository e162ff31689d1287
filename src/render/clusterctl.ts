// clusterctl provider artifacts: `runtime-extension-components.yaml` (the install YAML, its settings as
// clusterctl variables) and `metadata.yaml` (our release series and the CAPI contract each speaks).
// clusterctl substitutes ${VAR:=default} in the whole file before it reads a single object.
import { NEWEST_CAPI_MINOR } from '../runtime-sdk/catalog.ts';
import { DEFAULT_IMAGES } from './config.ts';
import { dumpYaml } from './distribution.ts';
import { EXTENSION, installManifests } from './install.ts';

export const CLUSTERCTL = {
  provider: EXTENSION.name,
  /** `clusterctl init --runtime-extension capi-registry-addon`; the local repository's folder is `runtime-extension-capi-registry-addon`. */
  manifestLabel: `runtime-extension-${EXTENSION.name}`,
  componentsFile: 'runtime-extension-components.yaml',
  metadataFile: 'metadata.yaml',
  /** CAPI v1.11 onwards (clusterctl v1.11+) speak v1beta2; the install YAML (`manifests --capi-version v1.10`) serves v1.10. */
  contract: 'v1beta2',
  /** The Deployment advertises the current release's hook catalog, as dist/install.yaml does. */
  capiMinor: NEWEST_CAPI_MINOR,
} as const;

export interface ClusterctlVariable {
  name: string;
  /** Absent: required, clusterctl refuses to install without it. */
  default?: string;
  help: string;
}

/** Every setting an air-gapped install changes, as clusterctl variables (environment or clusterctl.yaml). */
export const CLUSTERCTL_VARIABLES = {
  image: { name: 'CAPI_REGISTRY_ADDON_IMAGE', help: 'the extension image (`npm run image` builds it; push it to a registry the management cluster pulls from)' },
  namespace: { name: 'CAPI_REGISTRY_ADDON_NAMESPACE', default: 'capi-registry-addon-system', help: 'the provider namespace (use this, not `clusterctl init --target-namespace`: the ExtensionConfig and the serving certificate name it too)' },
  registryImage: { name: 'CAPI_REGISTRY_ADDON_REGISTRY_IMAGE', default: DEFAULT_IMAGES.registry, help: 'the Distribution image of every Cluster that names none (`serve --registry-image`)' },
  regbotImage: { name: 'CAPI_REGISTRY_ADDON_REGBOT_IMAGE', default: DEFAULT_IMAGES.regbot, help: 'the regbot sync sidecar image of every Cluster that names none (`serve --regbot-image`)' },
  // `none`, not empty: clusterctl counts a variable whose default is empty as required.
  defaultSource: { name: 'CAPI_REGISTRY_ADDON_DEFAULT_SOURCE', default: 'none', help: 'a source registry every opted-in Cluster that names no `sources` copies from, e.g. the management cluster\'s (`serve --default-source`; `none`: no default source)' },
  defaultSourceCaSecret: { name: 'CAPI_REGISTRY_ADDON_DEFAULT_SOURCE_CA_SECRET', default: 'none', help: 'Secret in the provider namespace with the default source\'s ca.crt (`serve --default-source-ca-secret`)' },
  defaultSourceCredentialsSecret: { name: 'CAPI_REGISTRY_ADDON_DEFAULT_SOURCE_CREDENTIALS_SECRET', default: 'none', help: 'Secret in the provider namespace with username and password for the default source (`serve --default-source-credentials-secret`)' },
  defaultSourceRepositories: { name: 'CAPI_REGISTRY_ADDON_DEFAULT_SOURCE_REPOSITORIES', default: '*', help: 'repositories copied from the default source, comma-separated globs (`serve --default-source-repositories`)' },
  chartRepoUrl: { name: 'CAPI_REGISTRY_ADDON_CHART_REPO_URL', default: 'oci://capi-registry-addon.<provider-namespace>.svc:443/charts', help: 'where CAAPH pulls the registry chart (`serve --chart-repo-url`; by default the extension serves it itself, so nothing leaves the cluster)' },
} as const satisfies Record<string, ClusterctlVariable>;

const ref = (v: ClusterctlVariable) => (v.default === undefined ? `\${${v.name}}` : `\${${v.name}:=${v.default}}`);

export function clusterctlComponents(): Record<string, unknown>[] {
  const v = CLUSTERCTL_VARIABLES;
  const namespace = ref(v.namespace);
  return installManifests({
    namespace,
    image: ref(v.image),
    capiMinor: CLUSTERCTL.capiMinor,
    serveArgs: [`--registry-image=${ref(v.registryImage)}`, `--regbot-image=${ref(v.regbotImage)}`, `--chart-repo-url=${ref(v.chartRepoUrl)}`,
      `--default-source=${ref(v.defaultSource)}`, `--default-source-ca-secret=${ref(v.defaultSourceCaSecret)}`, `--default-source-credentials-secret=${ref(v.defaultSourceCredentialsSecret)}`, `--default-source-repositories=${ref(v.defaultSourceRepositories)}`],
    clusterRoleName: `${namespace}-manager`,
  }).map((o) => withProviderLabel(o));
}

/** clusterctl adds this label itself; carrying it makes a `kubectl apply` install look the same. */
function withProviderLabel(o: Record<string, unknown>): Record<string, unknown> {
  const metadata = o.metadata as { labels?: Record<string, string> };
  return { ...o, metadata: { ...metadata, labels: { ...metadata.labels, 'cluster.x-k8s.io/provider': CLUSTERCTL.manifestLabel } } };
}

export function clusterctlComponentsYaml(): string {
  return clusterctlComponents().map((m) => `---\n${dumpYaml(m)}`).join('');
}

/** metadata.yaml: this build's release series speaks the v1beta2 contract. */
export function clusterctlMetadataYaml(version: string): string {
  const [major, minor] = version.replace(/^v/, '').split('.').map(Number);
  return dumpYaml({
    apiVersion: 'clusterctl.cluster.x-k8s.io/v1alpha3',
    kind: 'Metadata',
    releaseSeries: [{ major, minor, contract: CLUSTERCTL.contract }],
  });
}

/** The README's table of the variables (`manifests --format clusterctl-variables`). */
export function clusterctlVariableReference(): string {
  const rows = Object.values(CLUSTERCTL_VARIABLES).map((v: ClusterctlVariable) => `| \`${v.name}\` | ${v.default === undefined ? 'required' : `\`${v.default}\``} | ${v.help} |`);
  return ['| variable | default | what it sets |', '| --- | --- | --- |', ...rows].join('\n');
}
