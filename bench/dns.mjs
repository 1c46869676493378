// The DNS part of `npm run bench`: `cnm dns` beside dnsmasq serving the same names from a hosts file, both on
// the same bridge, asked by the same client from a pod's namespace. The client (below, run with node inside
// the pod) sends A queries over UDP, many in flight for throughput, one at a time for latency.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const CLIENT = `
const dgram = require('dgram');
const [server, names, mode, count, inflight] = [process.argv[1], process.argv[2].split(','), process.argv[3], Number(process.argv[4]), Number(process.argv[5])];
function query(id, name) {
  const labels = name.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]);
  const head = Buffer.alloc(12); head.writeUInt16BE(id, 0); head.writeUInt16BE(0x0100, 2); head.writeUInt16BE(1, 4);
  return Buffer.concat([head, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}
const sock = dgram.createSocket('udp4');
const pending = new Map(); const lat = []; let sent = 0, done = 0, failed = 0, nextId = 1;
const t0 = process.hrtime.bigint();
function send() {
  if (sent >= count) return;
  const id = nextId; nextId = (nextId % 65535) + 1; sent++;
  pending.set(id, process.hrtime.bigint());
  sock.send(query(id, names[sent % names.length]), 53, server);
}
sock.on('message', (m) => {
  const id = m.readUInt16BE(0); const start = pending.get(id); if (start === undefined) return;
  pending.delete(id); done++;
  if ((m.readUInt16BE(2) & 15) !== 0 || m.readUInt16BE(6) === 0) failed++;
  lat.push(Number(process.hrtime.bigint() - start) / 1e6);
  if (done + failed >= count || done >= count) finish(); else send();
});
// A lost datagram is re-sent after 1 s so the run always ends.
setInterval(() => { const now = process.hrtime.bigint(); for (const [id, t] of pending) if (now - t > 1000000000n) { pending.delete(id); sent--; send(); } }, 200);
function finish() {
  const secs = Number(process.hrtime.bigint() - t0) / 1e9; lat.sort((a, b) => a - b);
  console.log(JSON.stringify({ qps: done / secs, p50: lat[Math.floor(lat.length / 2)], p99: lat[Math.floor(lat.length * 0.99)], failed }));
  process.exit(0);
}
sock.bind(0, () => { for (let i = 0; i < (mode === 'throughput' ? inflight : 1); i++) send(); });
`;

const NAMES = 50;

/** Rows for the table: queries/s (many in flight) and p50 latency (one at a time), cnm dns against dnsmasq. */
export async function dnsBench({ BIN, dataDir, pid, progress, row }) {
  const third = 250;
  const bridge = `cnmd${pid % 100000}bb`.slice(0, 15);
  const runDir = join(dataDir, 'dns-run');
  const conf = {
    cniVersion: '1.0.0', name: `cnmd${pid}dnsbench`, type: 'cnm-bridge', bridge, isGateway: true, isDefaultGateway: true, dataDir,
    serviceDiscovery: { runDir }, ipam: { type: 'cnm-host-local', ranges: [[{ subnet: `172.21.${third}.0/24` }]] },
  };
  // The same network without service discovery, to see what discovery costs an ADD.
  const plain = { ...conf, name: `cnmd${pid}plainbench`, bridge: `cnmd${pid % 100000}bp`.slice(0, 15), ipam: { type: 'cnm-host-local', ranges: [[{ subnet: `172.21.${third + 1}.0/24` }]] } };
  delete plain.serviceDiscovery;
  const gateway = `172.21.${third}.1`;
  const dnsmasqAddr = `172.21.${third}.253`;
  const namespaces = [];
  const plainNamespaces = [];
  const env = (command, i, plainPod = false) => ({ PATH: '/usr/sbin:/usr/bin:/sbin:/bin', CNI_COMMAND: command, CNI_CONTAINERID: `dnsbench${i}`, CNI_NETNS: `/var/run/netns/${(plainPod ? plainNamespaces : namespaces)[i]}`, CNI_IFNAME: 'eth0', CNI_PATH: BIN, CNI_ARGS: `K8S_POD_NAME=svc-${i}` });
  const addTimes = { cnm: [], ref: [] };
  const timedAdd = (kind, c, i) => {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(`${BIN}/cnm-bridge`, [], { input: JSON.stringify(c), env: env('ADD', i, kind === 'ref'), encoding: 'utf8' });
    if (i > 0) addTimes[kind].push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (r.status !== 0) throw new Error(`DNS bench ADD ${i}: ${r.stdout} ${r.stderr}`);
    return r;
  };
  let dnsmasq;
  try {
    const hosts = [];
    for (let i = 0; i < NAMES; i++) {
      progress(`DNS: pod ${i + 1}/${NAMES}`);
      namespaces.push(`cnmd-${pid}-dnsbench-${i}`);
      spawnSync('ip', ['netns', 'add', namespaces[i]]);
      plainNamespaces.push(`cnmd-${pid}-dnsplain-${i}`);
      spawnSync('ip', ['netns', 'add', plainNamespaces[i]]);
      const order = i % 2 ? ['ref', 'cnm'] : ['cnm', 'ref'];
      let r;
      for (const kind of order) {
        if (kind === 'cnm') r = timedAdd('cnm', conf, i);
        else timedAdd('ref', plain, i);
      }
      const ip = JSON.parse(r.stdout).ips[0].address.split('/')[0];
      hosts.push(`${ip} svc-${i}.cnm.internal svc-${i}`);
    }
    mkdirSync(join(dataDir, 'dnsmasq'), { recursive: true });
    const hostsFile = join(dataDir, 'dnsmasq', 'hosts');
    writeFileSync(hostsFile, hosts.join('\n') + '\n');
    spawnSync('ip', ['addr', 'add', `${dnsmasqAddr}/32`, 'dev', bridge]);
    dnsmasq = spawn('dnsmasq', ['--keep-in-foreground', '--no-resolv', '--no-hosts', '--conf-file=/dev/null', '--pid-file', `--listen-address=${dnsmasqAddr}`, '--bind-interfaces', `--addn-hosts=${hostsFile}`, '--cache-size=1000', '--local-ttl=5'], { stdio: 'ignore' });
    const names = Array.from({ length: NAMES }, (_, i) => `svc-${i}.cnm.internal`).join(',');
    const ask = (server, mode, count, inflight = 64) => {
      const r = spawnSync('ip', ['netns', 'exec', namespaces[0], process.execPath, '-e', CLIENT, server, names, mode, String(count), String(inflight)], { encoding: 'utf8', timeout: 300_000 });
      if (r.status !== 0) throw new Error(`DNS bench client against ${server}: exit ${r.status} ${r.signal ?? ''} ${r.error?.message ?? ''} ${r.stdout} ${r.stderr}`);
      return JSON.parse(r.stdout);
    };
    // Both answer before anything is timed (the server binds its gateway within a poll).
    for (let tries = 0; tries < 100; tries++) {
      try {
        ask(gateway, 'latency', 5);
        ask(dnsmasqAddr, 'latency', 5);
        break;
      } catch (err) {
        if (tries === 99) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const runs = { cnm: [], ref: [] };
    for (const [kind, server] of [['cnm', gateway], ['ref', dnsmasqAddr], ['ref', dnsmasqAddr], ['cnm', gateway]]) {
      progress(`DNS: ${kind === 'cnm' ? 'cnm dns' : 'dnsmasq'}`);
      runs[kind].push({ throughput: ask(server, 'throughput', 40000), latency: ask(server, 'latency', 3000) });
    }
    const p50 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    row(`ADD p50 with serviceDiscovery (reference column: the same network without it), ${NAMES - 1} pods`, 'ms', p50(addTimes.cnm), p50(addTimes.ref));
    const best = (kind, f) => Math.max(...runs[kind].map(f));
    const least = (kind, f) => Math.min(...runs[kind].map(f));
    row(`DNS queries/s, ${NAMES} names, 64 in flight (cnm dns vs dnsmasq; best of 2)`, 'q/s', best('cnm', (r) => r.throughput.qps), best('ref', (r) => r.throughput.qps), 'higher');
    row('DNS p50 latency, one query at a time (best of 2)', 'ms', least('cnm', (r) => r.latency.p50), least('ref', (r) => r.latency.p50));
    return runs;
  } finally {
    dnsmasq?.kill('SIGTERM');
    for (let i = 0; i < namespaces.length; i++) {
      spawnSync(`${BIN}/cnm-bridge`, [], { input: JSON.stringify(conf), env: env('DEL', i) });
      spawnSync(`${BIN}/cnm-bridge`, [], { input: JSON.stringify(plain), env: env('DEL', i, true) });
    }
    spawnSync(`${BIN}/cnm`, ['--data-dir', dataDir, 'network', 'rm', plain.name]);
    const rm = spawnSync(`${BIN}/cnm`, ['--data-dir', dataDir, 'network', 'rm', conf.name], { encoding: 'utf8' });
    if (rm.status !== 0) {
      process.stderr.write(`\n[bench] DNS: network rm: ${rm.stderr}`);
      spawnSync('ip', ['link', 'del', bridge]);
      spawnSync('nft', ['delete', 'table', 'inet', `cnm_${conf.name}`]);
    }
    for (const name of [...namespaces, ...plainNamespaces]) spawnSync('ip', ['netns', 'delete', name]);
  }
}
