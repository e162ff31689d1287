// The hooks this extension serves, with the facts CAPI checks at discovery. One table drives
// discovery, routing and validation, so a hook cannot be advertised without being routable.

export type HookName =
  | 'BeforeClusterCreate'
  | 'AfterControlPlaneInitialized'
  | 'BeforeClusterUpgrade'
  | 'BeforeClusterDelete'
  | 'GeneratePatches'
  | 'DiscoverVariables';

export type HookShape = 'lifecycle' | 'generatePatches' | 'discoverVariables';

export interface HookSpec {
  hook: HookName;
  /** DNS-1123 label, stable: ClusterClasses reference `<handler>.<extensionconfig>`. */
  handler: string;
  /** Blocking hooks carry `retryAfterSeconds` in their response. */
  blocking: boolean;
  shape: HookShape;
  /** Extra top-level request fields CAPI always sends for this hook. */
  requiredStrings: readonly string[];
  /** First CAPI minor (1.x) whose catalog has this hook. */
  since: number;
  timeoutSeconds: number;
}

export const HOOKS: readonly HookSpec[] = [
  { hook: 'BeforeClusterCreate', handler: 'before-cluster-create', blocking: true, shape: 'lifecycle', requiredStrings: [], since: 9, timeoutSeconds: 10 },
  { hook: 'AfterControlPlaneInitialized', handler: 'after-control-plane-initialized', blocking: false, shape: 'lifecycle', requiredStrings: [], since: 9, timeoutSeconds: 10 },
  { hook: 'BeforeClusterUpgrade', handler: 'before-cluster-upgrade', blocking: true, shape: 'lifecycle', requiredStrings: ['fromKubernetesVersion', 'toKubernetesVersion'], since: 9, timeoutSeconds: 10 },
  { hook: 'BeforeClusterDelete', handler: 'before-cluster-delete', blocking: true, shape: 'lifecycle', requiredStrings: [], since: 9, timeoutSeconds: 10 },
  { hook: 'GeneratePatches', handler: 'generate-patches', blocking: false, shape: 'generatePatches', requiredStrings: [], since: 9, timeoutSeconds: 10 },
  { hook: 'DiscoverVariables', handler: 'discover-variables', blocking: false, shape: 'discoverVariables', requiredStrings: [], since: 9, timeoutSeconds: 10 },
];

/**
 * CAPI minors whose catalog and wire shapes this build knows. v1.14 (the current release) sends the same
 * wire format as v1.13; its real manager drives the hooks in the test suite, as does v1.12's.
 */
export const OLDEST_CAPI_MINOR = 10;
export const NEWEST_CAPI_MINOR = 14;

export interface CapiTarget {
  minor: number;
  /** Set when the asked-for version is newer than we know; discovery then uses NEWEST_CAPI_MINOR. */
  newerThanKnown: boolean;
}

/** Parses `--capi-version` ("v1.12", "1.12.5", "v1.13.0-rc.1"); absent means the current release. Throws an operator-readable error. */
export function parseCapiVersion(text: string | undefined): CapiTarget {
  if (text === undefined || text === '') return { minor: NEWEST_CAPI_MINOR, newerThanKnown: false };
  const match = /^v?1\.(\d{1,3})(?:\.\d+)?(?:[-+].*)?$/.exec(text.trim());
  if (!match) throw new Error(`--capi-version ${JSON.stringify(text)} is not a CAPI version: use the form v1.12 or v1.12.5`);
  const minor = Number(match[1]);
  if (minor < OLDEST_CAPI_MINOR) {
    throw new Error(`--capi-version ${text} is older than the oldest supported CAPI v1.${OLDEST_CAPI_MINOR}: upgrade Cluster API first`);
  }
  if (minor > NEWEST_CAPI_MINOR) return { minor: NEWEST_CAPI_MINOR, newerThanKnown: true };
  return { minor, newerThanKnown: false };
}

/** Hooks to advertise to a CAPI of this minor: one unknown hook would fail discovery whole. */
export const hooksFor = (target: CapiTarget): HookSpec[] => HOOKS.filter((h) => h.since <= target.minor);

export const pathSegment = (hook: HookName): string => hook.toLowerCase();
