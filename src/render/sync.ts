// The replicas' sync sidecar: regbot (github.com/regclient/regclient, regsync's sibling), one config per
// pod, picked by POD_NAME. One writer (registry-0) takes every push; each other replica makes itself an
// exact copy of it every syncInterval: tags that are new or moved are copied, tags the writer no longer
// lists are deleted, and a manifest the writer no longer holds goes with them. regsync copies but never
// deletes, so a delete came back from the peers; regbot's scripts can do both.
// The writer's own file runs only the copy from the Cluster's source registries (render/source-sync.ts),
// if it has any: it is the source of truth for its replicas and syncs from none of them.
import type { RegistryConfig } from './config.ts';
import { sourceEntry, sourcesScript } from './source-sync.ts';
import type { SourceConfig } from './sources.ts';
import { dumpYaml } from './distribution.ts';
import { hostPort, podNames, POD, REGISTRY, writerAddress, type RegistryLayout } from './metadata.ts';

const LOCAL = hostPort('127.0.0.1', REGISTRY.containerPort);

/** Repositories per catalog request: Distribution's default (catalog.maxentries), which our config keeps. */
export const CATALOG_PAGE = 1000;

/**
 * Lua shared by both scripts: the registries, the whole catalog (regbot's repo.ls returns one page: a
 * standby that saw only the writer's first page would delete what is on the next), tags, and a digest
 * lookup that answers nil for "not there". Only a 404 means "not there" (regclient ends its error with
 * "[http 404]"): any other failure, a writer answering 503 mid-pass or a reset connection, is raised,
 * so a pass that meets one stops before it deletes anything.
 */
const prelude = (writer: string, page: number) => `local writer, here = "${writer}", "${LOCAL}"
local function reposOf(registry)
  local all, last = {}, nil
  while true do
    local batch
    if last == nil then batch = repo.ls(registry, {limit = ${page}}) else batch = repo.ls(registry, {limit = ${page}, last = last}) end
    for _, r in ipairs(batch) do table.insert(all, r) end
    if #batch < ${page} then return all end
    last = batch[#batch]
  end
end
local function absent(err)
  return string.find(tostring(err), "[http 404]", 1, true) ~= nil
end
local function digestOf(ref)
  local ok, m = pcall(manifest.head, reference.new(ref))
  if ok then return m:descriptor().Digest end
  if absent(m) then return nil end
  error(m, 0)
end
local function tagsOf(registry, repository)
  local ok, tags = pcall(tag.ls, reference.new(registry .. "/" .. repository))
  if ok then return tags end
  if absent(tags) then return {} end
  error(tags, 0)
end
`;

/**
 * Every interval on a non-writer replica: become what the writer is. First the writer's whole state is
 * read (every repository, tag and digest); a failure there ends the pass with nothing copied or
 * deleted. Then tags are copied; last, what the writer no longer lists is deleted, each manifest only
 * once the writer has answered 404 for it.
 */
const mirrorScript = (writer: string, page: number) => `${prelude(writer, page)}
local function dropUnlessWriterHas(repository, digest)
  if digest ~= nil and digestOf(writer .. "/" .. repository .. "@" .. digest) == nil then
    manifest.head(reference.new(here .. "/" .. repository .. "@" .. digest)):delete()
    return true
  end
  return false
end
local function writerState()
  local repos, state = reposOf(writer), {}
  for _, r in ipairs(repos) do
    state[r] = {}
    for _, t in ipairs(tagsOf(writer, r)) do state[r][t] = digestOf(writer .. "/" .. r .. ":" .. t) end
  end
  return repos, state
end
local ok, repos, wanted = pcall(writerState)
if not ok then
  error("the writer did not answer in full (" .. tostring(repos) .. "): nothing copied or deleted this pass; the next pass tries again", 0)
end
local mine = reposOf(here)
-- An empty writer beside a full replica is a lost volume, not a request to delete everything.
if #repos == 0 and #mine > 0 then
  error("the writer lists no repositories while this replica holds " .. #mine .. ": nothing deleted; restore the writer's volume or push again", 0)
end
local copied, removed, moved = 0, 0, {}
for _, r in ipairs(repos) do
  for t, want in pairs(wanted[r]) do
    local have = digestOf(here .. "/" .. r .. ":" .. t)
    if have ~= want then
      image.copy(reference.new(writer .. "/" .. r .. ":" .. t), reference.new(here .. "/" .. r .. ":" .. t))
      if have ~= nil then table.insert(moved, {r, have}) end
      copied = copied + 1
    end
  end
end
for _, m in ipairs(moved) do dropUnlessWriterHas(m[1], m[2]) end
for _, r in ipairs(mine) do
  for _, t in ipairs(tagsOf(here, r)) do
    if not (wanted[r] and wanted[r][t] ~= nil) then
      if not dropUnlessWriterHas(r, digestOf(here .. "/" .. r .. ":" .. t)) then tag.delete(reference.new(here .. "/" .. r .. ":" .. t)) end
      removed = removed + 1
    end
  end
end
log("in sync with the writer: " .. copied .. " tags copied, " .. removed .. " tags removed")
`;

/**
 * The startup probe (`regbot once`, which fails when the script raises an error): a replica is Ready
 * once it holds every tag of the writer at the writer's digest. With the writer unreachable or failing,
 * a replica that holds content is Ready (stale beats nothing when the writer is down); an empty one is not.
 */
const readyScript = (writer: string, page: number) => `${prelude(writer, page)}
local function firstMissing()
  for _, r in ipairs(reposOf(writer)) do
    for _, t in ipairs(tagsOf(writer, r)) do
      local want = digestOf(writer .. "/" .. r .. ":" .. t)
      if want ~= nil and digestOf(here .. "/" .. r .. ":" .. t) ~= want then return r .. ":" .. t end
    end
  end
  return nil
end
local ok, missing = pcall(firstMissing)
if not ok then
  if #repo.ls(here, {limit = 1}) == 0 then error("the writer does not answer (" .. tostring(missing) .. ") and this replica is empty", 0) end
  return
end
if missing ~= nil then error("not in sync yet: " .. missing, 0) end
`;

/** Whether the pods run the sync sidecar: standbys to follow the writer, or sources for the writer to copy from. */
export const runsSidecar = (layout: RegistryLayout, config: RegistryConfig) => layout.replicas > 1 || (config.sources?.length ?? 0) > 0;

/** A source's file in the sources Secret (`<source>.<key>`) as regbot's template reads it. */
const sourceFile = (s: SourceConfig, key: string) => `{{ file "${POD.sourcesDir}/${s.name}.${key}" }}`;

/** regbot's credentials for a source host: its CA and login from the mounted Secret, when it has them. */
const sourceCred = (s: SourceConfig) => ({
  registry: s.host,
  tls: s.tls ? 'enabled' : 'disabled',
  ...(s.caSecretRef ? { regcert: sourceFile(s, 'ca.crt') } : {}),
  ...(s.credentialsSecretRef ? { user: sourceFile(s, 'username'), pass: sourceFile(s, 'password') } : {}),
  reqConcurrent: 3,
});

/**
 * `<pod>.yml` per pod (the sidecar's server config) and `ready.yml` (its startup probe), keyed by file
 * name. `catalogPage`: for tests.
 */
export function syncConfigs(layout: RegistryLayout, config: RegistryConfig, catalogPage = CATALOG_PAGE): Record<string, string> {
  const writer = writerAddress(layout.serviceDomain);
  // regbot's own templating reads the credential from the mounted Secret: it never sits in the ConfigMap.
  const login = config.auth.enabled
    ? { user: `{{ file "${POD.syncAuthDir}/username" }}`, pass: `{{ file "${POD.syncAuthDir}/password" }}` }
    : {};
  const cred = (registry: string) => ({ registry, tls: 'enabled', regcert: `{{ file "${POD.syncCaFile}" }}`, ...login, reqConcurrent: 3 });
  const sources = config.sources ?? [];
  const file = (scripts: { name: string; script: string; interval?: string }[], withSources = false) => dumpYaml({
    version: 1,
    creds: [cred(LOCAL), cred(writer), ...(withSources ? sources.map(sourceCred) : [])],
    // A first sync of a large registry takes long; a timeout ends a run that hangs, the next run resumes.
    defaults: { parallel: 2, interval: config.syncInterval, timeout: '1h', skipDockerConfig: true },
    scripts,
  });
  const out: Record<string, string> = {};
  // Every minute: each source keeps its own interval inside the script.
  const copy = { name: 'copy from the sources', interval: '1m', script: sourcesScript(prelude(writer, catalogPage), sources.map(sourceEntry)) };
  for (const pod of podNames(layout.replicas)) {
    out[`${pod}.yml`] = pod === REGISTRY.writerPod
      ? file(sources.length ? [copy] : [], true)
      : file([{ name: 'mirror the writer', script: mirrorScript(writer, catalogPage) }]);
  }
  out['ready.yml'] = file([{ name: 'holds what the writer holds', script: readyScript(writer, catalogPage) }]);
  return out;
}
