// The writer's copy from its source registries: one regbot script, run every minute, in which each
// source keeps its own interval (a file per source in the pod's emptyDir /tmp remembers its last pass,
// so a new pod, which a changed list makes, copies at once). Per source and pass:
//   1. select: the tags the source offers that match the patterns, up to maxTags (a failure here ends
//      the source's pass with nothing copied and nothing removed);
//   2. copy each selected tag whose digest here differs (regclient writes blobs, then child manifests,
//      then the tag: a node never finds a tag whose content is not all there); multi-arch indexes whole;
//      the source's digest tags (`sha256-<subject>…`: the OCI referrers fallback, cosign) of each
//      selected digest come along, also when they appear after their subject was copied;
//   3. only with removeUnselected, and only after a complete selection with no failure: a tag here that
//      the source still holds at the same digest but no longer selects is deleted.
// Each pass ends with one `capi-registry-addon/source {json}` log line the hooks read back (addon/sources.ts).
import { POD } from './metadata.ts';
import { globToLuaPattern, isLiteral, type SourceConfig } from './sources.ts';
import { durationMs } from '../lib/duration.ts';

/** The log line prefix of a source's pass result. */
export const SOURCE_RESULT_PREFIX = 'capi-registry-addon/source ';
/** Consecutive failed copies that end a source's pass (a source gone mid-pass). */
const FAILURES_IN_A_ROW = 3;
/** A failed pass is tried again after this, not after a whole interval. */
const RETRY_SECONDS = 60;

const lua = (s: string) => JSON.stringify(s);
const luaList = (items: string[]) => `{${items.map(lua).join(', ')}}`;

/** FNV-1a (32 bits): a short name for a source's settings, not a security boundary. */
const settingsKey = (s: SourceConfig) => {
  let h = 0x811c9dc5;
  for (const c of new TextEncoder().encode(JSON.stringify(s))) h = Math.imul(h ^ c, 0x01000193) >>> 0;
  return `${s.name}-${h.toString(16).padStart(8, '0')}`;
};

/** One source as the script's table; its state file is named after its settings, so a changed source is copied at once. */
export function sourceEntry(s: SourceConfig): string {
  const key = settingsKey(s);
  const every = Math.max(60, Math.round((durationMs(s.interval) ?? 600_000) / 1000));
  const repos = s.repositories.every(isLiteral) ? `literal = ${luaList(s.repositories)}` : `repos = ${luaList(s.repositories.map(globToLuaPattern))}`;
  return `{name = ${lua(s.name)}, registry = ${lua(s.host)}, key = ${lua(key)}, ${repos}, tags = ${luaList(s.tags.map(globToLuaPattern))}, maxTags = ${s.maxTags}, every = ${every}, removeUnselected = ${s.removeUnselected}}`;
}

/** The script; `prelude` gives here, reposOf, absent, digestOf and tagsOf (render/sync.ts). */
export const sourcesScript = (prelude: string, entries: string[]) => `${prelude}
local sources = {
  ${entries.join(',\n  ')},
}
local function matches(patterns, s)
  for _, p in ipairs(patterns) do if string.find(s, p) ~= nil then return true end end
  return false
end
local function isDigestTag(t) return string.find(t, "^sha256%-%x+") ~= nil end
local function jsonText(s)
  s = tostring(s)
  local out = {}
  for i = 1, #s do
    local b = string.byte(s, i)
    if b < 32 or b > 126 or b == 34 or b == 92 then out[#out + 1] = string.format("\\\\u%04x", b) else out[#out + 1] = string.char(b) end
  end
  return '"' .. table.concat(out) .. '"'
end
local function stateFile(s) return "${POD.sourceStateDir}/source-" .. s.key end
local function due(s)
  local f = io.open(stateFile(s), "r")
  if f == nil then return true end
  local last = tonumber(f:read("*a"))
  f:close()
  local now = os.time()
  return last == nil or now < last or now - last >= s.every
end
local function stamp(s, at)
  local f = io.open(stateFile(s), "w")
  if f ~= nil then f:write(tostring(at)); f:close() end
end
-- Bytes an image points to: its config and layers, for an index those of every platform.
local function sizeOf(registry, repository, reference_)
  local sep = ":"
  if string.find(reference_, "^sha256:") ~= nil then sep = "@" end
  -- getList: manifest.get would resolve an index to this machine's platform.
  local m = manifest.getList(reference.new(registry .. "/" .. repository .. sep .. reference_))
  local total = 0
  if m.manifests ~= nil then
    for _, d in ipairs(m.manifests) do total = total + d.size + sizeOf(registry, repository, d.digest) end
  else
    if m.config ~= nil then total = total + m.config.size end
    for _, l in ipairs(m.layers or {}) do total = total + l.size end
  end
  return total
end
-- The tags to copy: {repository, tag, digest}; and each repository's digest tags by tag.
local function selection(s)
  local repos = s.literal
  if repos == nil then
    repos = {}
    for _, r in ipairs(reposOf(s.registry)) do if matches(s.repos, r) then table.insert(repos, r) end end
  end
  local picked, digestTags, capped = {}, {}, false
  for _, r in ipairs(repos) do
    digestTags[r] = {}
    for _, t in ipairs(tagsOf(s.registry, r)) do
      if isDigestTag(t) then
        table.insert(digestTags[r], t)
      elseif matches(s.tags, t) then
        if #picked >= s.maxTags then capped = true else
          local d = digestOf(s.registry .. "/" .. r .. ":" .. t)
          if d ~= nil then table.insert(picked, {r, t, d}) end
        end
      end
    end
  end
  return picked, digestTags, capped
end
local function copyIfMoved(s, r, t, want, result)
  local have = digestOf(here .. "/" .. r .. ":" .. t)
  if have == want then return false end
  image.copy(reference.new(s.registry .. "/" .. r .. ":" .. t), reference.new(here .. "/" .. r .. ":" .. t), {digestTags = true})
  result.copied = result.copied + 1
  result.last = r .. ":" .. t
  local ok, bytes = pcall(sizeOf, s.registry, r, want)
  if ok then result.bytes = result.bytes + bytes end
  return true
end
local function removeUnselected(s, picked, result)
  local keep = {}
  for _, p in ipairs(picked) do keep[p[1] .. ":" .. p[2]] = true end
  for _, r in ipairs(reposOf(here)) do
    for _, t in ipairs(tagsOf(here, r)) do
      if not isDigestTag(t) and not keep[r .. ":" .. t] then
        local theirs = digestOf(s.registry .. "/" .. r .. ":" .. t)
        if theirs ~= nil and theirs == digestOf(here .. "/" .. r .. ":" .. t) then
          tag.delete(reference.new(here .. "/" .. r .. ":" .. t))
          result.removed = result.removed + 1
        end
      end
    end
  end
end
local function pass(s)
  local result = {selected = 0, copied = 0, bytes = 0, failed = 0, removed = 0, capped = false}
  local ok, picked, digestTags, capped = pcall(selection, s)
  if not ok then
    result.error = "listing " .. s.registry .. " failed, nothing copied or removed: " .. tostring(picked)
    return result
  end
  result.selected, result.capped = #picked, capped
  local inARow = 0
  for _, p in ipairs(picked) do
    local copied, err = pcall(function()
      copyIfMoved(s, p[1], p[2], p[3], result)
      -- Referrers (and signatures) that came after their subject: the subject's digest tags, each where it differs.
      local prefix = "sha256-" .. string.sub(p[3], 8)
      for _, t in ipairs(digestTags[p[1]] or {}) do
        if string.sub(t, 1, #prefix) == prefix then
          local d = digestOf(s.registry .. "/" .. p[1] .. ":" .. t)
          if d ~= nil then copyIfMoved(s, p[1], t, d, result) end
        end
      end
    end)
    if copied then inARow = 0 else
      result.failed = result.failed + 1
      result.error = p[1] .. ":" .. p[2] .. ": " .. tostring(err)
      inARow = inARow + 1
      if inARow >= ${FAILURES_IN_A_ROW} then
        result.error = result.error .. " (pass ended after ${FAILURES_IN_A_ROW} failures in a row; nothing removed)"
        return result
      end
    end
  end
  if s.removeUnselected and not capped and result.failed == 0 then
    local removed, err = pcall(removeUnselected, s, picked, result)
    if not removed then result.error = "removing unselected tags: " .. tostring(err) end
  end
  return result
end
for _, s in ipairs(sources) do
  if due(s) then
    local result = pass(s)
    local at = os.time()
    if result.error ~= nil then stamp(s, at - s.every + ${RETRY_SECONDS}) else stamp(s, at) end
    log("${SOURCE_RESULT_PREFIX}{\\"source\\":" .. jsonText(s.name) .. ",\\"at\\":" .. at .. ",\\"selected\\":" .. result.selected .. ",\\"copied\\":" .. result.copied .. ",\\"bytes\\":" .. string.format("%d", result.bytes) .. ",\\"failed\\":" .. result.failed .. ",\\"removed\\":" .. result.removed .. ",\\"capped\\":" .. tostring(result.capped) .. ",\\"last\\":" .. jsonText(result.last or "") .. ",\\"error\\":" .. jsonText(result.error or "") .. "}")
  end
end
`;
