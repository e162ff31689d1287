// Who may run what the mirror holds. containerd does not hand a Pod's pull secret to a mirror: every
// node pulls from the registry with the node credential, so anything pushed into it is pullable by every
// Pod on every node, whatever the upstream registry would have allowed. Distribution's htpasswd cannot
// authorize per repository, but every pull through the CRI starts with a Pod that the API server
// admitted: a ValidatingAdmissionPolicy (Kubernetes 1.30+) in the workload cluster lets Pods that name
// an image under a restricted repository prefix be created only in the namespaces allowed for it. The
// mirror maps every upstream name onto one repository path (`docker.io/corp/app` and `quay.io/corp/app`
// both read `corp/app`), so a prefix is matched whatever registry host an image names. Pure.
import type { RestrictedRepository } from './config.ts';
import { REGISTRY } from './metadata.ts';

type Obj = Record<string, unknown>;

export const RESTRICTED_POLICY = 'capi-registry-addon-restricted-repositories';

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The RE2 pattern (valid in JavaScript too) an image reference matches when its repository path, as the
 * mirror stores it, starts with `prefix`: any registry host or none before it (a first component with a
 * dot or a port, or localhost), and Docker Hub's short names (`nginx` is `library/nginx`).
 */
export function repositoryPattern(prefix: string): string {
  const host = '(([a-z0-9-]+(\\.[a-z0-9-]+)+|[a-z0-9-]+:[0-9]+|localhost)(:[0-9]+)?/)?';
  const library = prefix.startsWith('library/') ? `|^(docker\\.io/|index\\.docker\\.io/)?${escapeRegex(prefix.slice('library/'.length))}[^/]*$` : '';
  return `^${host}${escapeRegex(prefix)}${library}`;
}

const CEL_STRING = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** The policy and its binding; none when no repository is restricted. */
export function restrictedRepositoryPolicy(rules: readonly RestrictedRepository[]): Obj[] {
  if (!rules.length) return [];
  const labels = { ...REGISTRY.labels };
  return [
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name: RESTRICTED_POLICY, labels },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: { resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['pods', 'pods/ephemeralcontainers'] }] },
        variables: [{
          name: 'images',
          expression: "object.spec.containers.map(c, c.image) + (has(object.spec.initContainers) ? object.spec.initContainers.map(c, c.image) : []) + (has(object.spec.ephemeralContainers) ? object.spec.ephemeralContainers.map(c, c.image) : [])",
        }],
        validations: rules.map((rule) => ({
          expression: `request.namespace in [${rule.namespaces.map(CEL_STRING).join(', ')}] || !variables.images.exists(i, i.matches(${CEL_STRING(repositoryPattern(rule.prefix))}))`,
          messageExpression: `'image ' + variables.images.filter(i, i.matches(${CEL_STRING(repositoryPattern(rule.prefix))}))[0] + ' is under the restricted repository prefix ${rule.prefix.replace(/'/g, '')}: the registry mirror serves it to every node, so only Pods in namespace(s) ${rule.namespaces.join(', ') || '(none)'} may run it (capi-registry-addon restrictedRepositories)'`,
          reason: 'Forbidden',
        })),
      },
    },
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: RESTRICTED_POLICY, labels },
      spec: { policyName: RESTRICTED_POLICY, validationActions: ['Deny'] },
    },
  ];
}
