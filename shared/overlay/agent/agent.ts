// `cnm agent`: one per node. Holds the node's etcd lease and its subnet of every overlay network, keeps the
// VXLAN devices and per-peer entries in step with etcd, publishes the node's endpoints, and writes the local state
// the CNI plugin reads. Foreground; logs on stderr; SIGTERM stops it cleanly (the lease stays until its TTL, so a
// restart costs peers nothing); SIGKILL leaves the kernel as it was and a restart picks up from there.
import { mkdirSync, readdirSync } from 'node:fs';
import { EtcdClient, type Watch } from '../../etcd/client.ts';
import { listDir, readJson, removeFile, writeJsonAtomic } from '../../cnm/store.ts';
import { endpointDir } from '../../cnm/paths.ts';
import type { EndpointRecord } from '../../cnm/records.ts';
import { randomMac } from '../../cnm/pod-plan.ts';
import { cidrsOverlap, keys, specDifferences, subnetCandidates, type EndpointSummary, type NetworkSpec, type SubnetLease } from '../cluster.ts';
import { paths, vxlanName, type AgentState, type LocalNetwork, type Persisted } from '../local.ts';
import { nodeRuleset, nodeTable, peerEntry } from '../plan.ts';
import type { EtcdConf } from '../options.ts';
import { ClusterModel } from './model.ts';
import { remoteEndpoints, remotePath } from '../../discovery/remote.ts';
import { applyNft, deleteLink, ensureVxlan, forwardingOn, kernelNeedsOffloadOff, linkMtu, linkOfAddress, syncPeers, underlayTowards } from './kernel.ts';

export interface AgentOptions {
  etcd: EtcdConf;
  node: string;
  dataDir: string;
  underlay?: string;
  /** Seconds an etcd lease outlives a silent agent. */
  ttl: number;
  /** Turns tx checksum offload off whatever the kernel (true), never (false), or on kernels < 5.7 (undefined). */
  offloadOff?: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Agent {
  private readonly etcd: EtcdClient;
  private readonly model: ClusterModel;
  private readonly prefix: string;
  private lease = '0';
  /** When etcd last confirmed the lease; past the TTL without news, the node counts as unleased. */
  private renewedAt = 0;
  private revision = 0;
  private watch: Watch | undefined;
  private stopped = false;
  private underlay = '';
  private underlayMtu = 1500;
  private etcdUp = false;
  /** Networks this node holds a subnet of: network → subnet. */
  private readonly mine = new Map<string, string>();
  /** Endpoint keys this node has published: key → value. */
  private readonly published = new Map<string, string>();
  /** Remote names this run has mirrored into the store: network → what the file holds. */
  private readonly mirrored = new Map<string, string>();
  private persisted: Persisted;
  private chain: Promise<unknown> = Promise.resolve();
  private reconcileQueued = false;
  private timers: NodeJS.Timeout[] = [];
  private wake: (() => void) | undefined;

  constructor(private readonly o: AgentOptions) {
    this.etcd = new EtcdClient({ endpoints: o.etcd.endpoints, tls: o.etcd, timeoutMs: 3000 });
    this.prefix = o.etcd.prefix;
    this.model = new ClusterModel(this.prefix);
    this.persisted = readJson<Persisted>(paths.persisted(o.dataDir)) ?? { macs: {}, subnets: {} };
    for (const [net, remote] of remoteEndpoints(o.dataDir)) this.mirrored.set(net, JSON.stringify(remote));
  }

  private log(msg: string): void {
    process.stderr.write(`${new Date().toISOString()} cnm agent ${this.o.node}: ${msg}\n`);
  }

  /** Runs until stop(); resolves when stopped. */
  async run(): Promise<void> {
    this.detectUnderlay();
    mkdirSync(paths.requests(this.o.dataDir), { recursive: true, mode: 0o700 });
    this.writeState();
    forwardingOn();
    this.timers.push(setInterval(() => this.background('network requests', () => this.handleRequests()), 200));
    this.timers.push(setInterval(() => this.background('publishing endpoints', () => this.publishEndpoints()), 1000));
    // The kernel drifts without etcd saying so (an operator's ip link del, a flushed neighbour table): look again.
    this.timers.push(setInterval(() => this.scheduleReconcile(), 5000));
    let backoff = 200;
    while (!this.stopped) {
      try {
        await this.session();
        backoff = 200;
      } catch (err) {
        if (this.stopped) break;
        this.setEtcdUp(false);
        this.log(`etcd: ${(err as Error).message}; retrying in ${backoff} ms`);
        await this.pause(backoff);
        backoff = Math.min(backoff * 2, 2000);
      }
    }
  }

  /** A sleep that stop() cuts short. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.watch?.cancel();
    this.wake?.();
    removeFile(paths.agent(this.o.dataDir));
  }

  /** Runs fn after everything queued before it: one etcd or kernel change at a time. Rejects with fn's error. */
  private serial<T>(fn: () => Promise<T> | T): Promise<T | undefined> {
    const next = this.chain.then(() => (this.stopped ? undefined : fn()));
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** serial, for work started by a timer or an event: a failure is logged, and the next tick tries again. */
  private background(what: string, fn: () => Promise<unknown> | unknown): void {
    this.serial(fn).catch((err: Error) => this.log(`${what}: ${err.message}`));
  }

  private detectUnderlay(): void {
    if (this.o.underlay) {
      this.underlay = this.o.underlay;
      this.underlayMtu = linkMtu(linkOfAddress(this.o.underlay));
    } else {
      const host = new URL(this.o.etcd.endpoints[0]!).hostname.replace(/^\[|\]$/g, '');
      const u = underlayTowards(host);
      this.underlay = u.address;
      this.underlayMtu = linkMtu(u.dev);
    }
    this.log(`underlay ${this.underlay} (mtu ${this.underlayMtu})`);
  }

  private setEtcdUp(up: boolean): void {
    if (this.etcdUp === up) return;
    this.etcdUp = up;
    this.writeState();
  }

  private writeState(): void {
    if (this.stopped) return;
    const s: AgentState = {
      pid: process.pid,
      node: this.o.node,
      underlay: this.underlay,
      underlayMtu: this.underlayMtu,
      etcdEndpoints: this.o.etcd.endpoints,
      prefix: this.prefix,
      leaseExpires: this.lease === '0' ? 0 : this.renewedAt + this.o.ttl * 1000,
      etcdUp: this.etcdUp,
      updated: new Date().toISOString(),
    };
    writeJsonAtomic(paths.agent(this.o.dataDir), s);
  }

  /**
   * One connected stretch: make sure of the lease, list (or resume), watch; returns or throws when the watch ends,
   * and the caller starts the next one.
   */
  private async session(): Promise<void> {
    await this.serial(() => this.ensureLease());
    if (this.revision === 0) await this.serial(() => this.relist());
    this.setEtcdUp(true);
    // Renewals do not queue behind kernel work: a busy node must not lose its lease for it.
    const keepalive = setInterval(() => void this.keepAlive(), Math.max(500, (this.o.ttl * 1000) / 3));
    try {
      await new Promise<void>((resolve, reject) => {
        this.watch = this.etcd.watch(keys.all(this.prefix), this.revision + 1, {
          onEvents: (events, revision) => {
            this.background('watch events', () => {
              this.revision = Math.max(this.revision, revision);
              if (this.model.apply(events)) this.scheduleReconcile();
              this.mirrorNames();
            });
          },
          onCompacted: (rev) => {
            this.log(`watch start ${this.revision + 1} was compacted (at ${rev}): listing again`);
            this.revision = 0;
            resolve();
          },
          onClose: (err) => (err && !this.stopped ? reject(err) : resolve()),
        });
      });
    } finally {
      clearInterval(keepalive);
      this.watch?.cancel();
    }
  }

  private async relist(): Promise<void> {
    const r = await this.etcd.range(keys.all(this.prefix), { prefix: true });
    this.model.load(r.kvs);
    this.revision = r.revision;
    this.published.clear();
    // Endpoints an earlier run published under another lease count as unpublished: they go with that lease.
    for (const kv of r.kvs) if (kv.key.startsWith(keys.endpoints(this.prefix)) && kv.key.includes(`/${this.o.node}/`) && kv.lease === this.lease) this.published.set(kv.key, kv.value);
    this.log(`listed ${r.kvs.length} keys at revision ${r.revision}`);
    await this.acquireAll();
    await this.reconcile();
  }

  /** A lease that exists, with the node record and every subnet this node holds bound to it. */
  private async ensureLease(): Promise<void> {
    if (this.lease !== '0') {
      const ttl = await this.etcd.leaseKeepAlive(this.lease);
      if (ttl > 0) {
        this.renewed();
        return;
      }
      this.log(`lease ${this.lease} is gone: taking a new one and the same subnets back`);
      this.lease = '0';
      this.mine.clear();
      this.published.clear();
    }
    const l = await this.etcd.leaseGrant(this.o.ttl);
    this.lease = l.id;
    this.renewedAt = Date.now();
    this.writeState();
    await this.etcd.put(keys.node(this.prefix, this.o.node), JSON.stringify({ name: this.o.node, underlay: this.underlay }), this.lease);
    this.writeState();
    if (this.revision !== 0) await this.acquireAll();
  }

  private async keepAlive(): Promise<void> {
    if (this.lease === '0') return;
    try {
      const ttl = await this.etcd.leaseKeepAlive(this.lease);
      this.setEtcdUp(true);
      if (ttl > 0) this.renewed();
      else {
        await this.serial(async () => {
          await this.ensureLease();
          await this.reconcile();
        });
      }
    } catch (err) {
      this.setEtcdUp(false);
      this.writeState();
      this.log(`keepalive: ${(err as Error).message}`);
    }
  }

  private renewed(): void {
    this.renewedAt = Date.now();
    this.writeState();
  }

  private async acquireAll(): Promise<void> {
    for (const spec of this.model.networks.values()) await this.acquire(spec);
  }

  /** This node's subnet of a network: the one it holds, else the one it held before, else the first free one. */
  private async acquire(spec: NetworkSpec): Promise<void> {
    const net = spec.name;
    const mac = this.macOf(net);
    const lease = (subnet: string): SubnetLease => ({ node: this.o.node, subnet, underlay: this.underlay, vtepMac: mac });
    const subnetKey = keys.subnet(this.prefix, net, this.o.node);
    const held = this.model.leasesOf(net).get(this.o.node)?.subnet ?? this.mine.get(net);
    if (held) {
      // Rebind what this node holds to the current lease (a restart within the TTL, a new underlay address).
      const claim = keys.claim(this.prefix, net, held);
      const r = await this.etcd.txn([{ key: claim, value: this.o.node }], [
        { put: claim, value: this.o.node, lease: this.lease },
        { put: subnetKey, value: JSON.stringify(lease(held)), lease: this.lease },
      ]);
      if (r.succeeded) return this.took(net, held);
    }
    for (let round = 0; round < 5; round++) {
      const claims = await this.etcd.range(keys.claim(this.prefix, net, ''), { prefix: true });
      const taken = new Set(claims.kvs.map((kv) => kv.key.slice(kv.key.lastIndexOf('/') + 1).replace('_', '/')));
      for (const subnet of subnetCandidates(spec, taken, this.persisted.subnets[net])) {
        const claim = keys.claim(this.prefix, net, subnet);
        const r = await this.etcd.txn([{ key: claim, createRevision: 0 }], [
          { put: claim, value: this.o.node, lease: this.lease },
          { put: subnetKey, value: JSON.stringify(lease(subnet)), lease: this.lease },
        ]);
        if (r.succeeded) return this.took(net, subnet);
      }
    }
    this.log(`network ${net}: no free subnet of ${spec.network} (subnetLen ${spec.subnetLen})`);
  }

  private took(net: string, subnet: string): void {
    if (this.mine.get(net) !== subnet) this.log(`network ${net}: subnet ${subnet}`);
    this.mine.set(net, subnet);
    this.model.leasesOf(net).set(this.o.node, { node: this.o.node, subnet, underlay: this.underlay, vtepMac: this.macOf(net) });
    if (this.persisted.subnets[net] !== subnet) {
      this.persisted.subnets[net] = subnet;
      writeJsonAtomic(paths.persisted(this.o.dataDir), this.persisted);
    }
    this.scheduleReconcile();
  }

  /** The VTEP MAC of a network on this node, made once and kept across restarts so peers' entries stay valid. */
  private macOf(net: string): string {
    let mac = this.persisted.macs[net];
    if (!mac) {
      mac = randomMac();
      this.persisted.macs[net] = mac;
      writeJsonAtomic(paths.persisted(this.o.dataDir), this.persisted);
    }
    return mac;
  }

  private scheduleReconcile(): void {
    if (this.reconcileQueued) return;
    this.reconcileQueued = true;
    setImmediate(() =>
      this.background('reconcile', async () => {
        this.reconcileQueued = false;
        for (const spec of this.model.networks.values()) if (!this.mine.has(spec.name) && this.lease !== '0' && this.etcdUp) await this.acquire(spec);
        await this.reconcile();
      }),
    );
  }

  /** Brings the kernel and the local state files in line with the model; one network's failure spares the others. */
  private async reconcile(): Promise<void> {
    const offload = this.o.offloadOff ?? kernelNeedsOffloadOff();
    for (const spec of [...this.model.networks.values()]) {
      try {
        this.reconcileNetwork(spec, offload);
      } catch (err) {
        this.log(`network ${spec.name}: ${(err as Error).message}`);
      }
      // The kernel calls are synchronous: let lease renewals and watch events in between networks.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    for (const name of listDir(paths.networks(this.o.dataDir))) {
      const net = name.replace(/\.json$/, '');
      if (this.model.networks.has(net)) continue;
      const local = readJson<LocalNetwork>(paths.network(this.o.dataDir, net));
      if (local) deleteLink(local.vxlan);
      removeFile(paths.network(this.o.dataDir, net));
      this.mine.delete(net);
      this.log(`network ${net}: gone from the cluster, device removed`);
    }
    applyNft(nodeRuleset(nodeTable(this.o.dataDir), this.model.members(), [...this.model.networks.values()]));
    this.mirrorNames();
  }

  /**
   * Writes the names of other nodes' endpoints of each network this node holds into the local store, where the
   * node's DNS server reads them; a network without any loses its file. Only changes are written, and nothing
   * while etcd is away: the names last known keep answering.
   */
  private mirrorNames(): void {
    for (const net of new Set([...this.mine.keys(), ...this.mirrored.keys()])) {
      const remote = this.mine.has(net) ? this.model.namedRemotes(net, this.o.node) : [];
      const text = JSON.stringify(remote);
      if ((this.mirrored.get(net) ?? '[]') === text) continue;
      if (remote.length) {
        writeJsonAtomic(remotePath(this.o.dataDir, net), remote);
        this.mirrored.set(net, text);
      } else {
        removeFile(remotePath(this.o.dataDir, net));
        this.mirrored.delete(net);
      }
    }
  }

  private reconcileNetwork(spec: NetworkSpec, offload: boolean): void {
    const subnet = this.mine.get(spec.name);
    if (!subnet) return;
    const dev = vxlanName(spec.vni);
    const mtu = this.underlayMtu - (this.underlay.includes(':') ? 70 : 50);
    if (ensureVxlan({ name: dev, vni: spec.vni, port: spec.port, underlay: this.underlay, mac: this.macOf(spec.name), mtu, subnet }, offload) === 'created') {
      this.log(`network ${spec.name}: ${dev} up (vni ${spec.vni}, port ${spec.port})`);
    }
    const peers = [...this.model.leasesOf(spec.name).values()].filter((l) => l.node !== this.o.node).map(peerEntry);
    const ran = syncPeers(dev, peers);
    if (ran) this.log(`network ${spec.name}: ${peers.length} peers (${ran} entries changed)`);
    const local: LocalNetwork = { spec, node: this.o.node, subnet, vxlan: dev, vtepMac: this.macOf(spec.name), mtu };
    const path = paths.network(this.o.dataDir, spec.name);
    if (JSON.stringify(readJson(path)) !== JSON.stringify(local)) writeJsonAtomic(path, local);
  }

  /** Networks the node's plugins asked for (a first ADD before this agent knew the network). */
  private async handleRequests(): Promise<void> {
    let names: string[];
    try {
      names = readdirSync(paths.requests(this.o.dataDir)).filter((n) => n.endsWith('.json'));
    } catch {
      return;
    }
    if (names.length === 0 || !this.etcdUp) return;
    for (const name of names) {
      const file = `${paths.requests(this.o.dataDir)}/${name}`;
      const spec = readJson<NetworkSpec>(file);
      if (!spec) continue;
      const clash = [...this.model.networks.values()].find((n) => n.name !== spec.name && (n.vni === spec.vni || cidrsOverlap(n.network, spec.network)));
      if (clash) {
        const what = clash.vni === spec.vni ? `VNI ${spec.vni}` : `CIDR ${clash.network}`;
        writeJsonAtomic(paths.rejected(this.o.dataDir, spec.name), { message: `network ${spec.name} (${spec.network}, VNI ${spec.vni}) would share ${what} with overlay network ${clash.name}` });
        removeFile(file);
        continue;
      }
      const key = keys.network(this.prefix, spec.name);
      const r = await this.etcd.txn([{ key, createRevision: 0 }], [{ put: key, value: JSON.stringify(spec) }], [{ get: key }]);
      const existing = r.succeeded ? spec : (JSON.parse(r.gets[0]?.[0]?.value ?? '{}') as NetworkSpec);
      const diff = specDifferences(existing, spec);
      if (diff.length) {
        writeJsonAtomic(paths.rejected(this.o.dataDir, spec.name), { message: `network ${spec.name} exists in the cluster with other settings: this config has ${diff.join(', ')}` });
      } else {
        if (r.succeeded) this.log(`network ${spec.name}: created in the cluster (vni ${spec.vni}, ${spec.network})`);
        this.model.networks.set(spec.name, existing);
        await this.acquire(existing);
        await this.reconcile();
      }
      removeFile(file);
    }
  }

  /** Publishes the node's ready endpoints of every overlay network, bound to the node's lease. */
  private async publishEndpoints(): Promise<void> {
    if (this.lease === '0' || !this.etcdUp) return;
    const want = new Map<string, string>();
    for (const net of this.mine.keys()) {
      for (const name of listDir(endpointDir(this.o.dataDir, net))) {
        const ep = readJson<EndpointRecord>(`${endpointDir(this.o.dataDir, net)}/${name}`);
        if (!ep || ep.state !== 'ready') continue;
        const summary: EndpointSummary = {
          node: this.o.node,
          containerId: ep.containerId,
          ifname: ep.ifname,
          ips: ep.ips.map((i) => i.address),
          ...(ep.mac ? { mac: ep.mac } : {}),
          ...(ep.names?.length ? { names: ep.names } : {}),
          ...(ep.aliases?.length ? { aliases: ep.aliases } : {}),
        };
        want.set(keys.endpoint(this.prefix, net, this.o.node, `${ep.containerId}:${ep.ifname}`), JSON.stringify(summary));
      }
    }
    for (const [key, value] of want) {
      if (this.published.get(key) === value) continue;
      await this.etcd.put(key, value, this.lease);
      this.published.set(key, value);
    }
    for (const key of [...this.published.keys()]) {
      if (want.has(key)) continue;
      await this.etcd.delete(key);
      this.published.delete(key);
    }
  }
}
