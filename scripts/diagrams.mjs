// The README's two pictures, as data, and the small SVG renderer that draws them:
//   node scripts/diagrams.mjs            writes dist/docs/{hook-sequence,certificate-flow}.svg
//   node scripts/diagrams.mjs --check    fails when the committed SVGs differ from this source
// Plain SVG text, no dependency; edit the data below, run the script, commit both.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const FONT = 'font-family="Helvetica,Arial,sans-serif"';
const svg = (w, h, body) =>
  `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" ${FONT} font-size="13">\n` +
  `<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker></defs>\n` +
  `<rect width="${w}" height="${h}" fill="#fff"/>\n${body}</svg>\n`;
const text = (x, y, s, extra = '') => `<text x="${x}" y="${y}" ${extra}>${esc(s)}</text>`;
const lines = (x, y, rows, extra = '') => rows.map((r, i) => text(x, y + i * 16, r, extra)).join('\n');

// ---- Hook sequence: participants (lifelines) and messages, top to bottom.
export const SEQUENCE = {
  participants: ['CAPI topology controller', 'capi-registry-addon', 'management API', 'workload API', 'CAAPH', 'nodes (containerd)'],
  steps: [
    { note: 'Cluster created with clusterConfig.addons.registry' },
    { from: 0, to: 1, label: 'BeforeClusterCreate' },
    { from: 1, to: 2, label: 'root CA; the Cluster\'s own issuer under it; its cert → <cluster>-registry-addon-ca' },
    { from: 1, to: 0, label: 'Success (retryAfterSeconds while the root CA is missing)', dashed: true },
    { from: 0, to: 1, label: 'GeneratePatches (every reconcile; pure)' },
    { from: 1, to: 0, label: 'JSON patches: hosts.toml, CA file (contentFrom the copy), enable-mirror.sh', dashed: true },
    { from: 0, to: 5, label: 'bootstrap: kubeadm files with the mirror config' },
    { from: 0, to: 1, label: 'AfterControlPlaneInitialized' },
    { from: 1, to: 3, label: 'namespace, registry-tls (2-year cert from the Cluster\'s issuer), HTTP secret' },
    { from: 1, to: 2, label: 'label the Cluster; apply ONE HelmChartProxy (no secrets in values)' },
    { from: 4, to: 1, label: 'pull chart oci://…/charts (trusting the root CA Secret)' },
    { from: 4, to: 3, label: 'helm install: StatefulSet, Services, ConfigMaps, PDB' },
    { from: 5, to: 3, label: 'image pulls via the registry Service IP, upstream on failure' },
    { from: 0, to: 1, label: 'BeforeClusterUpgrade: renew registry-tls when due, re-apply (pods roll)' },
    { from: 0, to: 1, label: 'BeforeClusterDelete (deleting Clusters only): proxy, CA copy, issuer; never blocks' },
  ],
};

function sequenceSvg({ participants, steps }) {
  const colW = 190;
  const left = 20;
  const top = 20;
  const boxH = 40;
  const rowH = 34;
  const w = left * 2 + colW * participants.length;
  const x = (i) => left + colW * i + colW / 2;
  const h = top + boxH + 20 + steps.length * rowH + 20;
  const out = [];
  participants.forEach((p, i) => {
    out.push(`<rect x="${x(i) - 85}" y="${top}" width="170" height="${boxH}" rx="6" fill="#eef3fb" stroke="#3a6ea5"/>`);
    out.push(text(x(i), top + 25, p, 'text-anchor="middle" font-weight="bold"'));
    out.push(`<line x1="${x(i)}" y1="${top + boxH}" x2="${x(i)}" y2="${h - 10}" stroke="#999" stroke-dasharray="4 4"/>`);
  });
  steps.forEach((s, n) => {
    const y = top + boxH + 30 + n * rowH;
    if (s.note) {
      out.push(`<rect x="${left}" y="${y - 16}" width="${w - 2 * left}" height="22" fill="#fff8dc" stroke="#c9b458"/>`);
      out.push(text(w / 2, y, s.note, 'text-anchor="middle" font-style="italic"'));
      return;
    }
    const [a, b] = [x(s.from), x(s.to)];
    out.push(`<line x1="${a}" y1="${y}" x2="${b}" y2="${y}" stroke="#333" marker-end="url(#arrow)"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    // Keep the label inside the picture when the arrow hugs an edge.
    const half = s.label.length * 3.4;
    const mid = Math.min(Math.max((a + b) / 2, left + half), w - left - half);
    out.push(`<rect x="${mid - half}" y="${y - 19}" width="${2 * half}" height="15" fill="#fff" opacity="0.85"/>`);
    out.push(text(mid, y - 7, s.label, 'text-anchor="middle" font-size="12"'));
  });
  return svg(w, h, out.join('\n'));
}

// ---- Certificate flow: boxes at fixed places, arrows between them.
export const CERT_FLOW = {
  boxes: {
    issuer: { x: 20, y: 20, rows: ['cert-manager self-signed Issuer', '(or --mint-root-ca, once)'] },
    root: { x: 20, y: 130, rows: ['Secret registry-addon-root-ca', 'provider namespace, 10 years', 'tls.crt + tls.key + ca.crt'], strong: true },
    caIssuer: { x: 20, y: 270, rows: ['cert-manager CA Issuer', 'capi-registry-addon-root-ca'] },
    serving: { x: 20, y: 380, rows: ['extension serving certificate', 'Secret capi-registry-addon-serving-cert'] },
    clusterIssuer: { x: 460, y: 20, rows: ['Secret registry-addon-issuer-<digest>', 'provider namespace, one per Cluster', 'CA, pathLen 0; its key never leaves'], strong: true },
    copy: { x: 460, y: 130, rows: ['Secret <cluster>-registry-addon-ca', 'Cluster namespace: issuer cert ONLY', 'owned by the Cluster, moved with it'] },
    nodes: { x: 900, y: 270, rows: ['that Cluster\'s nodes: CA file', '/etc/containerd/capi-registry-addon/', 'ca.crt (trusts this Cluster only)'] },
    caaph: { x: 460, y: 270, rows: ['CAAPH trusts the chart endpoint', 'tlsConfig.caSecret = the root'] },
    tls: { x: 900, y: 20, rows: ['Secret registry-tls (workload cluster)', '2 years: leaf + the Cluster\'s issuer', 'issued at ACPI, renewed at BCU'] },
    pods: { x: 900, y: 130, rows: ['registry pods serve TLS', 'regsync verifies peers with ca.crt'] },
    capi: { x: 460, y: 380, rows: ['ExtensionConfig caBundle', '(CAPI injects ca.crt)'] },
  },
  arrows: [
    ['issuer', 'root', 'signs'],
    ['root', 'clusterIssuer', 'signs one per Cluster (BCC)'],
    ['clusterIssuer', 'copy', 'certificate only'],
    ['copy', 'nodes', 'contentFrom (GeneratePatches)'],
    ['clusterIssuer', 'tls', 'issues (key stays on the workload)'],
    ['tls', 'pods', 'mounted'],
    ['root', 'caIssuer', 'backs'],
    ['caIssuer', 'serving', 'issues'],
    ['serving', 'capi', 'ca.crt'],
    ['root', 'caaph', 'caSecret (chart server)'],
  ],
};

function flowSvg({ boxes, arrows }) {
  const W = 320;
  const H = (b) => 22 + b.rows.length * 16;
  const out = [];
  for (const b of Object.values(boxes)) {
    out.push(`<rect x="${b.x}" y="${b.y}" width="${W}" height="${H(b)}" rx="6" fill="${b.strong ? '#fde8e8' : '#eef3fb'}" stroke="${b.strong ? '#a53a3a' : '#3a6ea5'}"/>`);
    out.push(lines(b.x + 12, b.y + 20, b.rows, ''));
  }
  for (const [from, to, label] of arrows) {
    const a = boxes[from];
    const b = boxes[to];
    const sameCol = a.x === b.x;
    const [x1, y1, x2, y2] = sameCol ? [a.x + W / 2, a.y + H(a), b.x + W / 2, b.y] : [a.x + W, a.y + H(a) / 2, b.x, b.y + H(b) / 2];
    out.push(`<line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" stroke="#333" marker-end="url(#arrow)"/>`);
    const [mx, my] = sameCol ? [x1 + 8, (y1 + y2) / 2 + 4] : [(x1 + x2) / 2, (y1 + y2) / 2 - 6];
    out.push(text(mx, my, label, `font-size="11" ${sameCol ? '' : 'text-anchor="middle"'}`.trim()));
  }
  return svg(1240, 470, out.join('\n'));
}

export const DIAGRAMS = { 'hook-sequence.svg': () => sequenceSvg(SEQUENCE), 'certificate-flow.svg': () => flowSvg(CERT_FLOW) };

if (import.meta.url === `file://${process.argv[1]}`) {
  const check = process.argv.includes('--check');
  mkdirSync('dist/docs', { recursive: true });
  let stale = 0;
  for (const [name, draw] of Object.entries(DIAGRAMS)) {
    const path = `dist/docs/${name}`;
    const want = draw();
    if (check) {
      let have = '';
      try {
        have = readFileSync(path, 'utf8');
      } catch {}
      if (have !== want) {
        console.error(`${path} is out of date: run node scripts/diagrams.mjs`);
        stale++;
      }
    } else {
      writeFileSync(path, want);
      console.log(`${path} written`);
    }
  }
  process.exit(stale ? 1 : 0);
}
