// The `clusterConfig` variable this extension publishes through DiscoverVariables. The schema uses the
// subset CAPI accepts for ClusterClass variables (v1beta1 and v1beta2 ClusterClassVariable agree on it).
// No `default` at the top of `registry`: `{}` must stay `{}` so that opt-in stays visible.

export const registryVariableSchema = {
  type: 'object',
  description: 'Deploy an in-cluster OCI registry that every node uses as a mirror. Present (even {}) means enabled.',
  properties: {
    provider: {
      type: 'string',
      description: 'Registry implementation.',
      enum: ['CNCF Distribution'],
    },
  },
} as const;

export const clusterConfigVariable = {
  name: 'clusterConfig',
  required: false,
  schema: {
    openAPIV3Schema: {
      type: 'object',
      description: 'Cluster-wide configuration consumed by capi-registry-addon.',
      properties: {
        addons: {
          type: 'object',
          description: 'Add-ons deployed into the workload cluster.',
          properties: { registry: registryVariableSchema },
        },
      },
    },
  },
} as const;
