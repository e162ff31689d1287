// CLI entry: `serve` (the default) and `version`. Other commands arrive with their features.
import process from 'node:process';
import { certInspect, certIssue, certMintCa, CERT_INSPECT, CERT_ISSUE, CERT_MINT_CA } from './cli/cert.ts';
import { render, RENDER } from './cli/render.ts';
import { status, STATUS, UNHEALTHY_EXIT } from './cli/status.ts';
import { seed, SEED } from './cli/seed.ts';
import { DEFAULT_ALLOW_FROM, installYaml } from './render/install.ts';
import { CLUSTERCTL, clusterctlComponentsYaml, clusterctlMetadataYaml, clusterctlVariableReference } from './render/clusterctl.ts';
import { DEFAULT_IMAGES, PATTERNS } from './render/config.ts';
import { platformSource } from './render/sources.ts';
import { clusterConfigVariable, variableReference } from './render/variables.ts';
import { helpText, parseFlags, parseListen, parsePositiveInt, UsageError, type CommandSpec } from './cli/args.ts';
import { createLogger, LOG_LEVELS, type LogFormat, type LogLevel } from './observe/log.ts';
import { NEWEST_CAPI_MINOR, OLDEST_CAPI_MINOR, parseCapiVersion } from './runtime-sdk/catalog.ts';
import { DEFAULT_CERT_DIR, serve } from './server/serve.ts';
import { detectRuntime } from './server/runtime.ts';

declare const __VERSION__: string;
export const VERSION = typeof __VERSION__ === 'string' ? __VERSION__ : '0.0.0-dev';
const PROGRAM = 'capi-registry-addon';
/**
 * CAPI's largest request is GeneratePatches: the Cluster's templates and variables. The recorded CAPI
 * requests are 2-3 KiB, a topology with a fully specified control plane, twelve extra files and three
 * worker classes is ~100 KiB (the bench's), so 1 MiB is ten times that. It is also what keeps the worst
 * JSON anyone can send inside the Deployment's 256 MiB: peak RSS 94-142 MiB on the three runtimes at
 * 1 MiB, 121-202 MiB at 2 MiB (measured: README, Threat model). Raise it for larger topologies.
 */
const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

const SERVE: CommandSpec = {
  name: 'serve',
  summary: 'Serve the Cluster API Runtime SDK hooks over HTTPS (the default command).',
  flags: [
    { name: 'listen', value: 'HOST:PORT', help: 'address to listen on', default: '0.0.0.0:9443' },
    { name: 'tls-cert-file', value: 'FILE', help: `serving certificate (PEM); default ${DEFAULT_CERT_DIR}/tls.crt, else self-signed in memory` },
    { name: 'tls-key-file', value: 'FILE', help: `serving key (PEM); default ${DEFAULT_CERT_DIR}/tls.key` },
    { name: 'tls-reload-interval', value: 'SECONDS', help: 'how often to look for a renewed certificate', default: '10' },
    { name: 'kubeconfig', value: 'FILE', help: 'management cluster kubeconfig; else in-cluster, else $KUBECONFIG or ~/.kube/config' },
    { name: 'capi-version', value: 'VERSION', help: `Cluster API version whose hook catalog to advertise (v1.${OLDEST_CAPI_MINOR}..v1.${NEWEST_CAPI_MINOR})`, default: `v1.${NEWEST_CAPI_MINOR}` },
    { name: 'max-body-bytes', value: 'BYTES', help: 'largest hook request accepted (two that large at once at most)', default: String(DEFAULT_MAX_BODY_BYTES) },
    { name: 'max-connections', value: 'N', help: 'most open connections (Node, Deno) and requests in flight (every runtime; more are answered 503 at once)', default: '256' },
    { name: 'log-level', value: LOG_LEVELS.join('|'), help: 'least severe level logged', default: 'info' },
    { name: 'log-format', value: 'json|text', help: 'log line format', default: 'json' },
    { name: 'provider-namespace', value: 'NS', help: 'namespace of the extension and its root CA Secret', default: 'capi-registry-addon-system' },
    { name: 'mint-root-ca', help: 'mint the root CA Secret once when cert-manager has not made it' },
    { name: 'chart-repo-url', value: 'URL', help: 'where CAAPH pulls the registry chart (this server\'s /v2/ endpoint)', default: 'oci://capi-registry-addon.<provider-namespace>.svc:443/charts' },
    { name: 'registry-image', value: 'REF', help: 'Distribution image of a Cluster that names none (air gaps: your copy)', default: DEFAULT_IMAGES.registry },
    { name: 'regbot-image', value: 'REF', help: 'regbot image (the replicas\' sync sidecar) of a Cluster that names none', default: DEFAULT_IMAGES.regbot },
    { name: 'chart-ca-secret', value: 'NS/NAME', help: 'Secret (key ca.crt) CAAPH trusts for the chart server; default the root CA Secret in the provider namespace (the root signs this server in the shipped manifests)' },
    { name: 'converge-interval', value: 'SECONDS', help: 'background loop: time between two passes over one opted-in Cluster', default: '600' },
    { name: 'volume-release-timeout', value: 'SECONDS', help: 'BeforeClusterDelete: how long deletion of a Cluster may wait for its registry\'s volumes to be deleted in the workload cluster (an unreachable workload API server: at most 120)', default: '600' },
    { name: 'default-source', value: 'URL', help: 'a source registry every opted-in Cluster that names no `sources` copies from, e.g. the management cluster\'s own (https://host[:port]); none: no default source', default: 'none' },
    { name: 'default-source-ca-secret', value: 'NAME', help: 'Secret in the provider namespace with ca.crt, the only CA trusted for the default source' },
    { name: 'default-source-credentials-secret', value: 'NAME', help: 'Secret in the provider namespace with username and password for the default source' },
    { name: 'default-source-repositories', value: 'GLOB,GLOB', help: 'repositories copied from the default source', default: '*' },
    { name: 'default-source-tags', value: 'GLOB,GLOB', help: 'tags copied from the default source', default: '*' },
    { name: 'default-source-interval', value: 'DURATION', help: 'how often the default source is copied from', default: '10m' },
    { name: 'no-seed', help: 'no watch caches: the Clusters are not listed or watched, the background loop learns of them from hooks and GeneratePatches only and reads the management API server directly' },
  ],
};

const VERSION_CMD: CommandSpec = { name: 'version', summary: 'Print the version and the JavaScript runtime.', flags: [] };
const CERT_CMD: CommandSpec = { name: 'cert', summary: 'Registry certificates: `cert mint-ca`, `cert issue`, `cert inspect FILE`.', flags: [] };
const MANIFESTS: CommandSpec = {
  name: 'manifests',
  summary: 'Print the install YAML for the management cluster (RBAC, Deployment, Service, cert-manager resources, ExtensionConfig).',
  flags: [
    { name: 'namespace', value: 'NS', help: 'namespace to install into', default: 'capi-registry-addon-system' },
    { name: 'image', value: 'REF', help: 'extension image', default: `capi-registry-addon:${VERSION}` },
    { name: 'capi-version', value: 'VERSION', help: 'Cluster API version (v1.10 gets ExtensionConfig v1alpha1, v1.11+ v1beta2)', default: `v1.${NEWEST_CAPI_MINOR}` },
    { name: 'allow-from', value: 'NS,NS', help: 'namespaces whose pods may reach the hook port (NetworkPolicy): CAPI, CAAPH, your metrics scraper', default: DEFAULT_ALLOW_FROM.join(',') },
    { name: 'format', value: 'install|clusterctl|clusterctl-metadata|clusterctl-variables', help: `install: YAML to apply; clusterctl: ${CLUSTERCTL.componentsFile} (settings as clusterctl variables); clusterctl-metadata: ${CLUSTERCTL.metadataFile}; clusterctl-variables: their reference table`, default: 'install' },
  ],
};
const VARIABLES: CommandSpec = {
  name: 'variables',
  summary: 'Print the clusterConfig variable schema (as DiscoverVariables publishes it) or its reference table.',
  flags: [{ name: 'output', value: 'json|markdown', help: 'json: the ClusterClass variable; markdown: the configuration reference table', default: 'json' }],
};
const COMMANDS = [SERVE, RENDER, MANIFESTS, STATUS, SEED, VARIABLES, CERT_CMD, VERSION_CMD];

const usage = () =>
  [
    `Usage: ${PROGRAM} [command] [flags]`,
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`),
    '',
    `Run '${PROGRAM} <command> --help' for a command's flags.`,
    '',
  ].join('\n');

async function runServe(argv: string[]): Promise<void> {
  const flags = parseFlags(SERVE, argv);
  if (flags.help) return void process.stdout.write(helpText(PROGRAM, SERVE));
  const str = (name: string) => (typeof flags[name] === 'string' ? (flags[name] as string) : undefined);
  const level = str('log-level') as LogLevel;
  if (!LOG_LEVELS.includes(level)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  const format = str('log-format') as LogFormat;
  if (format !== 'json' && format !== 'text') throw new UsageError('--log-format must be json or text');
  const log = createLogger({ level, format });
  const { hostname, port } = parseListen(str('listen')!);
  let target;
  try {
    target = parseCapiVersion(str('capi-version'));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const providerNamespace = str('provider-namespace')!;
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(providerNamespace)) throw new UsageError('--provider-namespace must be a Kubernetes namespace name');
  if (!/^oci:\/\/[^/\s]+(\/[^\s]*)?$/.test(str('chart-repo-url')!)) throw new UsageError('--chart-repo-url must be oci://HOST[:PORT]/PATH (CAAPH trusts a private CA only for OCI repositories)');
  const caSecretFlag = str('chart-ca-secret');
  const caParts = caSecretFlag?.split('/');
  if (caSecretFlag !== undefined && (caParts!.length !== 2 || !caParts![0] || !caParts![1])) throw new UsageError('--chart-ca-secret must be NAMESPACE/NAME');
  for (const flag of ['registry-image', 'regbot-image']) {
    if (!new RegExp(PATTERNS.image).test(str(flag)!)) throw new UsageError(`--${flag} must be an image reference such as registry.example.com/mirror/registry:3.1.2`);
  }
  const chartCaSecret = caParts ? { namespace: caParts[0]!, name: caParts[1]! } : undefined;
  let defaultSource;
  try {
    defaultSource = platformSource({
      url: str('default-source'), caSecret: str('default-source-ca-secret'), credentialsSecret: str('default-source-credentials-secret'),
      repositories: str('default-source-repositories'), tags: str('default-source-tags'), interval: str('default-source-interval'),
    }, providerNamespace);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (target.newerThanKnown) log.warn('--capi-version is newer than this build knows; advertising the newest known catalog', { known: `v1.${NEWEST_CAPI_MINOR}` });
  await serve({
    version: VERSION,
    hostname,
    port,
    certFile: str('tls-cert-file'),
    keyFile: str('tls-key-file'),
    kubeconfig: str('kubeconfig'),
    target,
    maxBodyBytes: parsePositiveInt('max-body-bytes', str('max-body-bytes')!),
    maxConnections: parsePositiveInt('max-connections', str('max-connections')!),
    tlsReloadSeconds: parsePositiveInt('tls-reload-interval', str('tls-reload-interval')!),
    log,
    addon: {
      providerNamespace,
      mintRootCa: flags['mint-root-ca'] === true,
      chartRepoUrl: str('chart-repo-url')!.replace('<provider-namespace>', providerNamespace),
      chartCaSecret,
      images: { registry: str('registry-image')!, regbot: str('regbot-image')! },
      convergeIntervalSeconds: parsePositiveInt('converge-interval', str('converge-interval')!),
      volumeReleaseTimeoutSeconds: parsePositiveInt('volume-release-timeout', str('volume-release-timeout')!),
      seed: flags['no-seed'] !== true,
      ...(defaultSource ? { defaultSource } : {}),
    },
  });
}

async function runCert(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === 'issue') {
    const flags = parseFlags(CERT_ISSUE, rest);
    process.stdout.write(flags.help ? helpText(PROGRAM, CERT_ISSUE) : await certIssue(flags));
  } else if (sub === 'mint-ca') {
    const flags = parseFlags(CERT_MINT_CA, rest);
    process.stdout.write(flags.help ? helpText(PROGRAM, CERT_MINT_CA) : await certMintCa(flags));
  } else if (sub === 'inspect') {
    const help = rest.includes('--help') || rest.includes('-h');
    process.stdout.write(help ? helpText(PROGRAM, CERT_INSPECT).replace('[flags]', 'FILE') : certInspect(rest[0]));
  } else {
    throw new UsageError(`cert needs a subcommand: 'cert mint-ca', 'cert issue' or 'cert inspect FILE'`);
  }
}

export async function main(argv: string[]): Promise<void> {
  const first = argv[0];
  const command = first === undefined || first.startsWith('-') ? 'serve' : first;
  const rest = command === first ? argv.slice(1) : argv;
  try {
    if (command === 'help' || (command === 'serve' && first !== undefined && (first === '-h' || first === '--help') && argv.length === 1)) {
      process.stdout.write(usage());
    } else if (command === 'serve') {
      await runServe(rest);
    } else if (command === 'render') {
      const flags = parseFlags(RENDER, rest.map((a) => (a === '-o' ? '--output' : a)));
      process.stdout.write(flags.help ? helpText(PROGRAM, RENDER) : await render(flags));
    } else if (command === 'manifests') {
      const flags = parseFlags(MANIFESTS, rest);
      if (flags.help) process.stdout.write(helpText(PROGRAM, MANIFESTS));
      else {
        let target;
        try {
          target = parseCapiVersion(String(flags['capi-version']));
        } catch (err) {
          throw new UsageError((err as Error).message);
        }
        if (flags.format === 'clusterctl') process.stdout.write(clusterctlComponentsYaml());
        else if (flags.format === 'clusterctl-metadata') process.stdout.write(clusterctlMetadataYaml(VERSION));
        else if (flags.format === 'clusterctl-variables') process.stdout.write(`${clusterctlVariableReference()}\n`);
        else if (flags.format !== 'install') throw new UsageError('--format must be install, clusterctl, clusterctl-metadata or clusterctl-variables');
        else process.stdout.write(installYaml({ namespace: String(flags.namespace), image: String(flags.image), capiMinor: target.minor, allowFrom: String(flags['allow-from']).split(',').map((n) => n.trim()).filter(Boolean) }));
      }
    } else if (command === 'status') {
      const flags = parseFlags(STATUS, rest.map((a) => (a === '-o' ? '--output' : a)));
      if (flags.help) process.stdout.write(helpText(PROGRAM, STATUS));
      else {
        const report = await status(flags);
        process.stdout.write(report.text);
        if (!report.healthy) process.exitCode = UNHEALTHY_EXIT;
      }
    } else if (command === 'seed') {
      const paths: string[] = [];
      const flags = parseFlags(SEED, rest, paths);
      if (flags.help) process.stdout.write(helpText(PROGRAM, SEED).replace('[flags]', '[flags] PATH...'));
      else {
        const result = await seed(flags, paths);
        process.stdout.write(`${result.summary}\n`);
        process.exitCode = result.code;
      }
    } else if (command === 'variables') {
      const flags = parseFlags(VARIABLES, rest.map((a) => (a === '-o' ? '--output' : a)));
      if (flags.help) process.stdout.write(helpText(PROGRAM, VARIABLES));
      else if (flags.output === 'markdown') process.stdout.write(`${variableReference()}\n`);
      else if (flags.output === 'json') process.stdout.write(`${JSON.stringify(clusterConfigVariable, null, 2)}\n`);
      else throw new UsageError('variables: --output must be json or markdown');
    } else if (command === 'cert') {
      await runCert(rest);
    } else if (command === 'version') {
      const flags = parseFlags(VERSION_CMD, rest);
      process.stdout.write(flags.help ? helpText(PROGRAM, VERSION_CMD) : `${PROGRAM} ${VERSION} (${detectRuntime()})\n`);
    } else {
      throw new UsageError(`unknown command ${JSON.stringify(command)}\n\n${usage()}`);
    }
  } catch (err) {
    process.stderr.write(`${PROGRAM}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  }
}

await main(process.argv.slice(2));
