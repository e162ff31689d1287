// `render --cluster FILE`: what the addon would create for a Cluster, without touching any cluster.
import { clusterRegistry } from '../addon/layout.ts';
import { registryPlan } from '../addon/plan.ts';
import { dumpYaml } from '../render/distribution.ts';
import { parseCluster } from '../runtime-sdk/request.ts';
import { UsageError, type CommandSpec, type ParsedFlags } from './args.ts';
import { readDocument } from './cert.ts';

export const RENDER: CommandSpec = {
  name: 'render',
  summary: 'Print everything the addon would create for a Cluster: management objects, workload objects (Secrets without private material) and node files.',
  flags: [
    { name: 'cluster', value: 'FILE', help: 'the Cluster manifest (v1beta1 or v1beta2, YAML or JSON)' },
    { name: 'output', value: 'yaml|json', help: 'output format (-o)', default: 'yaml' },
  ],
};

export async function render(flags: ParsedFlags): Promise<string> {
  if (typeof flags.cluster !== 'string') throw new UsageError('render needs --cluster FILE');
  const parsed = parseCluster(readDocument(flags.cluster, 'Cluster'));
  if (!parsed.ok) throw new UsageError(`Cluster ${flags.cluster}: ${parsed.message}`);
  const registry = clusterRegistry(parsed.value);
  if (!registry) throw new UsageError(`Cluster ${flags.cluster} has not opted in (clusterConfig.addons.registry is absent): nothing to render`);
  const plan = await registryPlan(parsed.value, registry);
  if (flags.output === 'json') return `${JSON.stringify(plan, null, 2)}\n`;
  if (flags.output === 'yaml') return dumpYaml(plan);
  throw new UsageError('--output must be yaml or json');
}
