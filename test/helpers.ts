// Shared test helpers (unit and integration).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const FIXTURES = join(process.cwd(), 'test', 'fixtures');
export const CAPI_VERSIONS = ['v1.10', 'v1.12', 'v1.13', 'v1.14'] as const;
export const HOOK_PREFIX = '/hooks.runtime.cluster.x-k8s.io/v1alpha1';

export interface WireFixture {
  version: string;
  file: string;
  /** The URL path (without query) CAPI posts this body to. */
  path: string;
  body: string;
  hook: string;
  optedIn: boolean;
}

const SEGMENTS: Record<string, [string, string]> = {
  discovery: ['Discovery', 'discovery'],
  'discover-variables': ['DiscoverVariables', 'discovervariables/discover-variables'],
  'before-cluster-create': ['BeforeClusterCreate', 'beforeclustercreate/before-cluster-create'],
  'after-control-plane-initialized': ['AfterControlPlaneInitialized', 'aftercontrolplaneinitialized/after-control-plane-initialized'],
  'before-cluster-upgrade': ['BeforeClusterUpgrade', 'beforeclusterupgrade/before-cluster-upgrade'],
  'before-cluster-delete': ['BeforeClusterDelete', 'beforeclusterdelete/before-cluster-delete'],
  'generate-patches': ['GeneratePatches', 'generatepatches/generate-patches'],
};

/** Every recorded CAPI request body, with where CAPI sends it. */
export function wireFixtures(): WireFixture[] {
  const out: WireFixture[] = [];
  for (const version of CAPI_VERSIONS) {
    const dir = join(FIXTURES, 'capi', version);
    for (const file of readdirSync(dir).sort()) {
      const base = file.replace(/\.json$/, '');
      const [name, tag] = base.split('.') as [string, string | undefined];
      const seg = SEGMENTS[name];
      if (!seg) throw new Error(`unknown fixture ${file}`);
      out.push({
        version,
        file: `${version}/${file}`,
        path: `${HOOK_PREFIX}/${seg[1]}`,
        body: readFileSync(join(dir, file), 'utf8'),
        hook: seg[0],
        optedIn: tag === 'opted-in',
      });
    }
  }
  return out;
}

export const BLOCKING = new Set(['BeforeClusterCreate', 'BeforeClusterUpgrade', 'BeforeClusterDelete']);

/**
 * Checks a hook response field by field against what CAPI's Go decoder requires; returns the problems.
 */
export function wireProblems(hook: string, status: number, text: string): string[] {
  const problems: string[] = [];
  if (status !== 200) problems.push(`HTTP ${status}, CAPI needs 200`);
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text);
  } catch {
    return [...problems, `not JSON: ${text.slice(0, 80)}`];
  }
  if (body.apiVersion !== 'hooks.runtime.cluster.x-k8s.io/v1alpha1') problems.push(`apiVersion ${body.apiVersion}`);
  if (body.kind !== `${hook}Response`) problems.push(`kind ${body.kind}`);
  if (body.status !== 'Success' && body.status !== 'Failure') problems.push(`status ${JSON.stringify(body.status)}`);
  if (body.status === 'Failure' && (typeof body.message !== 'string' || body.message.length === 0)) problems.push('Failure without a message');
  if (BLOCKING.has(hook)) {
    if (!Number.isInteger(body.retryAfterSeconds) || (body.retryAfterSeconds as number) < 0) problems.push('blocking hook without retryAfterSeconds');
  } else if ('retryAfterSeconds' in body) problems.push('retryAfterSeconds on a non-blocking hook');
  return problems;
}
