// A bridge network's node-wide kernel objects: the bridge (with a MAC of its own), its gateway addresses, the
// network's nft tables, the isolation table and the forwarding sysctls. What should exist comes from the store;
// drift() reads what does (from /sys and /proc, and one netfilter netlink round trip), repair() recreates what
// is missing and puts back what the running endpoints had in it.
import { ErrorCode, step } from '../cni/errors.ts';
import type { IpConfig } from '../cni/result.ts';
import type { DriverContext } from '../cnm/driver.ts';
import { listEndpoints, listNetworks } from '../cnm/inventory.ts';
import { shortHash } from '../cnm/names.ts';
import type { EndpointRecord, NetworkRecord } from '../cnm/records.ts';
import { withLock } from '../cnm/store.ts';
import { formatIp, parseCidr } from '../ipam/ip.ts';
import { ipBatch } from '../kernel/iproute.ts';
import { linkExists, linkMac, linkMaster, linkUp, MAC_SET, macAssignType, readSysctl } from '../kernel/links.ts';
import { nftApply, nftTablesExist, type NftTableRef } from '../kernel/nft.ts';
import { runOk } from '../kernel/spawn.ts';
import { setSysctls } from '../kernel/sysctl.ts';
import type { BridgeOptions, PortMapping } from './options.ts';
import { addElementsScript, endpointElements, isolationRuleset, isolationTable, networkRuleset, tableName, vlanBatch } from './plan.ts';
import type { Bandwidth } from '../bandwidth/options.ts';

export const optionsOf = (net: NetworkRecord) => net.options as unknown as BridgeOptions;

/**
 * What differs between the drivers whose networks are a bridge on the node (bridge, overlay): the network's own
 * nft ruleset, and whether the node-wide isolation table between bridge networks is theirs.
 */
export interface BridgeKind {
  ruleset(net: NetworkRecord, o: BridgeOptions): string;
  isolated: boolean;
}

// Loops, not map, on the ADD and DEL paths: a builtin's first call costs a compile (see shared/cni/result.ts).
export function addressesOf(ips: IpConfig[]): string[] {
  const out: string[] = [];
  for (const ip of ips) out.push(ip.address);
  return out;
}

export function subnetsOf(net: NetworkRecord): string[] {
  const out: string[] = [];
  for (const x of net.subnets) out.push(x.subnet);
  return out;
}

export const BRIDGE_KIND: BridgeKind = {
  ruleset: (net, o) => networkRuleset(net.name, o, subnetsOf(net)),
  isolated: true,
};

/** What a bridge endpoint record keeps (driverState). */
export interface BridgeEndpointState {
  hostVeth: string;
  mac: string;
  portMappings: PortMapping[];
  /** The pod's shaping (the bandwidth capability or the reference plugin's keys), when it has any. */
  bandwidth?: Bandwidth;
}

export const endpointStateOf = (ep: EndpointRecord) => ep.driverState as unknown as Partial<BridgeEndpointState>;

/** Serializes changes to the node's bridges and the isolation table across networks. */
export const bridgesLock = (ctx: DriverContext) => `${ctx.dataDir}/locks/_bridges`;

/**
 * The bridge's own MAC: locally administered, derived from its name, so a recreated bridge answers with the MAC
 * the pods' neighbour tables already hold, and the bridge never borrows (and, when that port goes, changes to)
 * a port's MAC.
 */
export function bridgeMac(bridge: string): string {
  const h = shortHash(`bridge/${bridge}`);
  const bytes = [0, 2, 4, 6, 8, 10].map((i) => parseInt(h.slice(i, i + 2), 16));
  bytes[0] = (bytes[0]! & 0xfc) | 0x02;
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** `ip -batch` lines making the bridge: its own MAC from the start, up. */
export function createBridgeBatch(o: BridgeOptions): string[] {
  const lines = [`link add ${o.bridge} address ${bridgeMac(o.bridge)}${o.mtu ? ` mtu ${o.mtu}` : ''} type bridge${o.vlan ? ' vlan_filtering 1' : ''}`];
  if (o.promiscMode) lines.push(`link set dev ${o.bridge} promisc on`);
  lines.push(`link set dev ${o.bridge} up`);
  return lines;
}

/** Rewrites the isolation table from the store: every bridge network's bridge, plus one being created. */
export function syncIsolation(ctx: DriverContext, extra: { name: string; bridge: string } | undefined, without?: string): void {
  const bridges = listNetworks(ctx.dataDir)
    .filter((n) => n.driver === 'bridge' && n.name !== without && n.name !== extra?.name)
    .map((n) => optionsOf(n).bridge);
  if (extra) bridges.push(extra.bridge);
  nftApply(isolationRuleset(isolationTable(ctx.dataDir), bridges));
}

/** "gw/prefix" the bridge carries for each pool subnet when it is the gateway. */
function gatewayAddrs(net: NetworkRecord, o: BridgeOptions): string[] {
  if (!o.isGateway) return [];
  return net.subnets.map((s) => {
    const cidr = parseCidr(s.subnet)!;
    return `${s.gateway ?? formatIp(cidr.family, cidr.network + 1n)}/${cidr.prefix}`;
  });
}

function forwardingSysctls(net: NetworkRecord, o: BridgeOptions): string[] {
  if (!o.isGateway) return [];
  let v4 = false;
  let v6 = false;
  for (const s of net.subnets) {
    const family = parseCidr(s.subnet)?.family;
    v4 ||= family === 4;
    v6 ||= family === 6;
  }
  return [...(v4 ? ['net.ipv4.ip_forward'] : []), ...(v6 ? ['net.ipv6.conf.all.forwarding'] : [])];
}

function tablesOf(ctx: DriverContext, net: NetworkRecord, o: BridgeOptions, kind: BridgeKind): { network: NftTableRef[]; isolation: NftTableRef[] } {
  const t = tableName(net.name);
  return {
    network: [{ family: 'inet', name: t }, ...(o.macspoofchk ? [{ family: 'bridge', name: t } as const] : [])],
    isolation: kind.isolated ? [{ family: 'inet', name: isolationTable(ctx.dataDir) }] : [],
  };
}

/** What is missing or wrong, as data: repair acts on it, drift phrases it. */
interface Drift {
  bridgeMissing: boolean;
  /** A bridge cnm-cni made that has no MAC of its own (made by an older cnm-cni). */
  bridgeMacBorrowed: boolean;
  bridgeDown: boolean;
  tablesMissing: NftTableRef[];
  isolationMissing: boolean;
  sysctlsOff: string[];
}

// Loops, not filter: on the ADD path its first call costs a compile (see shared/cni/result.ts).
function missing(tables: NftTableRef[], present: boolean[]): NftTableRef[] {
  const out: NftTableRef[] = [];
  for (let i = 0; i < tables.length; i++) if (!present[i]) out.push(tables[i]!);
  return out;
}

function sysctlsOff(keys: string[]): string[] {
  const off: string[] = [];
  for (const k of keys) if (readSysctl(k) !== '1') off.push(k);
  return off;
}

function survey(ctx: DriverContext, net: NetworkRecord, kind: BridgeKind): Drift {
  const o = optionsOf(net);
  const bridgeMissing = !linkExists(o.bridge);
  const tables = tablesOf(ctx, net, o, kind);
  const present = nftTablesExist([...tables.network, ...tables.isolation]);
  return {
    bridgeMissing,
    bridgeMacBorrowed: !bridgeMissing && net.state.createdBridge === true && macAssignType(o.bridge) !== MAC_SET,
    bridgeDown: !bridgeMissing && !linkUp(o.bridge),
    tablesMissing: missing(tables.network, present),
    isolationMissing: kind.isolated && !present[present.length - 1],
    sysctlsOff: sysctlsOff(forwardingSysctls(net, o)),
  };
}

const clean = (d: Drift) => !d.bridgeMissing && !d.bridgeMacBorrowed && !d.bridgeDown && d.tablesMissing.length === 0 && !d.isolationMissing && d.sysctlsOff.length === 0;

function phrase(net: NetworkRecord, d: Drift, ctx: DriverContext): string[] {
  const o = optionsOf(net);
  return [
    ...(d.bridgeMissing ? [`bridge ${o.bridge} is missing`] : []),
    ...(d.bridgeMacBorrowed ? [`bridge ${o.bridge} has no MAC of its own (it borrows a port's)`] : []),
    ...(d.bridgeDown ? [`bridge ${o.bridge} is down`] : []),
    ...d.tablesMissing.map((t) => `nft table ${t.family} ${t.name} is missing`),
    ...(d.isolationMissing ? [`nft table inet ${isolationTable(ctx.dataDir)} is missing`] : []),
    ...d.sysctlsOff.map((k) => `${k} is not 1`),
  ];
}

export function bridgeNetworkDrift(ctx: DriverContext, net: NetworkRecord, kind: BridgeKind = BRIDGE_KIND): string[] {
  return phrase(net, survey(ctx, net, kind), ctx);
}

/** Endpoints of the network whose host veth is still on the node: the ones running pods use. */
function liveEndpoints(ctx: DriverContext, net: NetworkRecord): Array<{ ep: EndpointRecord; s: BridgeEndpointState }> {
  return listEndpoints(ctx.dataDir, net.name)
    .filter((ep) => ep.state === 'ready')
    .map((ep) => ({ ep, s: endpointStateOf(ep) as BridgeEndpointState }))
    .filter(({ s }) => s.hostVeth !== undefined && linkExists(s.hostVeth));
}

/** The bridge again, with its gateway addresses and the running pods' veths as its ports. */
function recreateBridge(ctx: DriverContext, net: NetworkRecord, o: BridgeOptions): void {
  const live = liveEndpoints(ctx, net);
  const lines = createBridgeBatch(o);
  for (const a of gatewayAddrs(net, o)) lines.push(`addr replace ${a} dev ${o.bridge}`);
  for (const { s } of live) {
    if (linkMaster(s.hostVeth) === o.bridge) continue;
    const hairpin = o.hairpinMode || (s.portMappings?.length ?? 0) > 0;
    lines.push(`link set dev ${s.hostVeth} master ${o.bridge}`);
    if (hairpin || !o.icc) lines.push(`link set dev ${s.hostVeth} type bridge_slave hairpin ${hairpin ? 'on' : 'off'} isolated ${o.icc ? 'off' : 'on'}`);
  }
  ipBatch(lines);
  if (o.vlan) runOk('bridge', ['-batch', '-'], live.flatMap(({ s }) => vlanBatch(s.hostVeth, o.vlan!)).join('\n') + '\n');
}

/** The network's tables again, holding the running endpoints' hostPorts and macspoofchk entries. */
function recreateTables(ctx: DriverContext, net: NetworkRecord, o: BridgeOptions, kind: BridgeKind): void {
  const known = subnetsOf(net);
  const els = liveEndpoints(ctx, net).map(({ ep, s }) => endpointElements(net.name, o, addressesOf(ep.ips), known, s.portMappings ?? [], s.hostVeth, s.mac));
  const merged = { table: tableName(net.name), newSubnets: [...new Set(els.flatMap((e) => e.newSubnets))], maps: els.flatMap((e) => e.maps) };
  nftApply(kind.ruleset(net, o) + addElementsScript(merged));
}

/**
 * Recreates what survey finds missing, under the bridges lock (another ADD may be repairing the same network:
 * it surveys again once it holds the lock). Each failure names the object that could not be recreated.
 */
export function ensureBridgeNetwork(ctx: DriverContext, net: NetworkRecord, kind: BridgeKind = BRIDGE_KIND): string[] {
  if (clean(survey(ctx, net, kind))) return [];
  return withLock(bridgesLock(ctx), () => {
    const d = survey(ctx, net, kind);
    const o = optionsOf(net);
    const what = `network ${net.name}`;
    if (d.bridgeMissing) step(`${what}: bridge ${o.bridge} is missing and could not be recreated`, () => recreateBridge(ctx, net, o), ErrorCode.KernelFailure);
    const fix: string[] = [];
    // Pinned to the MAC it has now: running pods hold it for their gateway, so it must not change under them.
    if (d.bridgeMacBorrowed) fix.push(`link set dev ${o.bridge} address ${linkMac(o.bridge) ?? bridgeMac(o.bridge)}`);
    if (d.bridgeDown) fix.push(`link set dev ${o.bridge} up`);
    if (fix.length) step(`${what}: bridge ${o.bridge} could not be set right`, () => ipBatch(fix), ErrorCode.KernelFailure);
    if (d.tablesMissing.length) {
      const names = d.tablesMissing.map((t) => `${t.family} ${t.name}`).join(', ');
      step(`${what}: nft table ${names} is missing and could not be recreated`, () => recreateTables(ctx, net, o, kind), ErrorCode.KernelFailure);
    }
    if (d.isolationMissing) step(`${what}: the isolation table could not be recreated`, () => syncIsolation(ctx, undefined), ErrorCode.KernelFailure);
    if (d.sysctlsOff.length) step(`${what}: cannot turn on ${d.sysctlsOff.join(', ')}`, () => setSysctls(Object.fromEntries(d.sysctlsOff.map((k) => [k, '1']))), ErrorCode.KernelFailure);
    return phrase(net, d, ctx);
  });
}
