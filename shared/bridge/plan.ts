// What the kernel should look like, as data: iproute2 batch lines and nft scripts. Pure, so unit-tested
// without root; driver.ts applies them.
import { nftString } from '../kernel/nft.ts';
import { familyOf, formatCidr, parseCidr } from '../ipam/ip.ts';
import { DEFAULT_DATA_DIR } from '../cnm/store.ts';
import { endpointLinkName, shortHash } from '../cnm/names.ts';
import type { BridgeOptions, PortMapping } from './options.ts';

/** The nft table a network owns: `inet cnm_<network>`. */
export function tableName(network: string): string {
  return `cnm_${network}`;
}

/**
 * One table for all bridge networks of a store: traffic between two of them is dropped. It is rebuilt from
 * the store, so a store other than the default (a test's, say) gets a table of its own.
 */
export function isolationTable(dataDir: string): string {
  return dataDir === DEFAULT_DATA_DIR ? 'cnm_isolation' : `cnm_isolation_${shortHash(dataDir).slice(0, 8)}`;
}

/** Host-side veth name, derived from the attachment so a DEL after a kill finds it. */
export function hostVethName(network: string, containerId: string, ifname: string): string {
  return endpointLinkName('cnmv', network, containerId, ifname);
}

/**
 * Replaces the network's table whole: the rules every endpoint relies on, and the sets and maps they fill.
 * Masquerade and hairpin match the network's subnets, so an ordinary pod adds no element of its own: removing
 * one costs an RCU grace period (~20 ms here), so only pods with hostPorts (or macspoofchk) pay that.
 */
export function networkRuleset(network: string, o: BridgeOptions, subnets: string[]): string {
  const t = tableName(network);
  const br = nftString(o.bridge);
  const lines = [
    ...recreateTable('inet', t),
    ...subnetSets(subnets),
    ...hostPortChains(),
    '  chain postrouting { type nat hook postrouting priority srcnat; policy accept;',
    ...hairpinMasquerade(br),
    ...(o.ipMasq
      ? [`    ip saddr @subnets4 oifname != ${br} ip daddr != 224.0.0.0/4 masquerade`, `    ip6 saddr @subnets6 oifname != ${br} ip6 daddr != ff00::/8 masquerade`]
      : []),
    '  }',
  ];
  if (o.internal) {
    lines.push(
      '  chain forward { type filter hook forward priority filter; policy accept;',
      `    iifname ${br} oifname != ${br} drop`,
      `    oifname ${br} iifname != ${br} drop`,
      '  }',
    );
  }
  lines.push('}');
  if (o.macspoofchk) {
    lines.push(
      ...recreateTable('bridge', t),
      '  set checked { type ifname; }',
      '  set allowed { type ifname . ether_addr; }',
      '  chain prerouting { type filter hook prerouting priority -300; policy accept;',
      '    iifname @checked iifname . ether saddr != @allowed drop',
      '  }',
      '}',
    );
  }
  return lines.join('\n') + '\n';
}

/** The first lines of a script that replaces a table whole: made if missing, deleted, opened again. */
export function recreateTable(family: 'inet' | 'bridge', table: string): string[] {
  return [`table ${family} ${table} {}`, `delete table ${family} ${table}`, `table ${family} ${table} {`];
}

/** The network's subnets, per family: what masquerade and hairpin match, and what CHECK looks for. */
export function subnetSets(subnets: string[]): string[] {
  const elements = (family: 4 | 6) => {
    const of = subnets.filter((s) => familyOf(s) === family);
    return of.length ? ` elements = { ${of.join(', ')} };` : '';
  };
  return [`  set subnets4 { type ipv4_addr; flags interval;${elements(4)} }`, `  set subnets6 { type ipv6_addr; flags interval;${elements(6)} }`];
}

/**
 * A pod reaching a hostPort that leads back onto its own bridge (itself: hairpin) must see the reply come from the
 * gateway, or its own stack answers itself. Matched on the source, not on iifname: with br_netfilter the bridged
 * path reaches this hook without an input device. `br` is nft-quoted.
 */
export function hairpinMasquerade(br: string): string[] {
  return [`    oifname ${br} ct status dnat ip saddr @subnets4 masquerade`, `    oifname ${br} ct status dnat ip6 saddr @subnets6 masquerade`];
}

/** The hostPort maps (filled per endpoint, see endpointElements) and the DNAT chains that read them. */
export function hostPortChains(): string[] {
  return [
    '  map hostports4 { type inet_proto . inet_service : ipv4_addr . inet_service; }',
    '  map hostports4ip { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }',
    '  map hostports6 { type inet_proto . inet_service : ipv6_addr . inet_service; }',
    '  map hostports6ip { type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service; }',
    '  chain hostports {',
    '    meta nfproto ipv4 dnat ip to ip daddr . meta l4proto . th dport map @hostports4ip',
    '    meta nfproto ipv4 dnat ip to meta l4proto . th dport map @hostports4',
    '    meta nfproto ipv6 dnat ip6 to ip6 daddr . meta l4proto . th dport map @hostports6ip',
    '    meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @hostports6',
    '  }',
    '  chain prerouting { type nat hook prerouting priority dstnat; policy accept; fib daddr type local jump hostports; }',
    '  chain output { type nat hook output priority -100; policy accept; fib daddr type local jump hostports; }',
  ];
}

export function deleteNetworkRuleset(network: string): string {
  const t = tableName(network);
  return [`table inet ${t} {}`, `delete table inet ${t}`, `table bridge ${t} {}`, `delete table bridge ${t}`].join('\n') + '\n';
}

/** The isolation table for the given bridges (removed when there are none). */
export function isolationRuleset(table: string, bridges: string[]): string {
  const lines = [`table inet ${table} {}`, `delete table inet ${table}`];
  const unique = [...new Set(bridges)].sort();
  if (unique.length > 0) {
    lines.push(
      `table inet ${table} {`,
      `  set bridges { type ifname; elements = { ${unique.map(nftString).join(', ')} } }`,
      '  chain forward { type filter hook forward priority filter - 10; policy accept;',
      ...unique.map((b) => `    iifname ${nftString(b)} oifname != ${nftString(b)} oifname @bridges drop`),
      '  }',
      '}',
    );
  }
  return lines.join('\n') + '\n';
}

/** Netfilter elements one endpoint adds to its network's tables. */
export interface EndpointElements {
  table: string;
  /** Subnets the network did not know when it was made (an IPAM plugin run by exec): added, never removed. */
  newSubnets: string[];
  /** Per-endpoint elements, removed again by DEL. */
  maps: Array<{ family: 'inet' | 'bridge'; map: string; key: string; value?: string }>;
}

/** The subnet ("10.1.0.0/24") an address ("10.1.0.5/24") is in. */
export function subnetOf(address: string): string {
  return formatCidr(parseCidr(address)!);
}

export function endpointElements(network: string, o: BridgeOptions, ips: string[], knownSubnets: string[], ports: PortMapping[], hostVeth: string, mac: string): EndpointElements {
  // Loops, not map and filter: on the ADD and DEL paths their first call costs a compile (see shared/cni/result.ts).
  const v4: string[] = [];
  const v6: string[] = [];
  const newSubnets: string[] = [];
  for (const ip of ips) {
    const addr = ip.split('/')[0]!;
    (familyOf(addr) === 4 ? v4 : v6).push(addr);
    const s = subnetOf(ip);
    if (!knownSubnets.includes(s) && !newSubnets.includes(s)) newSubnets.push(s);
  }
  const el: EndpointElements = { table: tableName(network), newSubnets, maps: [] };
  for (const p of ports) {
    const hostFamily = p.hostIP ? familyOf(p.hostIP) : undefined;
    for (const [family, targets] of [[4, v4], [6, v6]] as const) {
      const target = targets[0];
      if (!target || (hostFamily && hostFamily !== family)) continue;
      el.maps.push({ family: 'inet', ...hostPortKey(p, family), value: `${target} . ${p.containerPort}` });
    }
  }
  if (o.macspoofchk) {
    el.maps.push({ family: 'bridge', map: 'checked', key: nftString(hostVeth) });
    el.maps.push({ family: 'bridge', map: 'allowed', key: `${nftString(hostVeth)} . ${mac}` });
  }
  return el;
}

/** The map and key a port mapping occupies for one family: (hostIP .) protocol . hostPort. */
export function hostPortKey(p: PortMapping, family: 4 | 6): { map: string; key: string } {
  return {
    map: `hostports${family}${p.hostIP ? 'ip' : ''}`,
    key: p.hostIP ? `${p.hostIP} . ${p.protocol} . ${p.hostPort}` : `${p.protocol} . ${p.hostPort}`,
  };
}

/** Every key a set of port mappings can occupy, whatever address they pointed at. */
export function hostPortKeys(ports: PortMapping[]): Array<{ map: string; key: string }> {
  return ports.flatMap((p) => ([4, 6] as const).filter((f) => !p.hostIP || familyOf(p.hostIP) === f).map((f) => hostPortKey(p, f)));
}

/** Adds an endpoint's elements; `create` makes a hostPort another pod holds fail instead of being taken over. */
export function addElementsScript(el: EndpointElements): string {
  const lines: string[] = [];
  for (const s of el.newSubnets) lines.push(`add element inet ${el.table} subnets${familyOf(s)} { ${s} }`);
  for (const m of el.maps) lines.push(`${m.value ? 'create' : 'add'} element ${m.family} ${el.table} ${m.map} { ${m.key}${m.value ? ` : ${m.value}` : ''} }`);
  return lines.length ? lines.join('\n') + '\n' : '';
}

/**
 * Removes an endpoint's elements whether or not each is still there: adding an element first makes the
 * delete that follows it valid (nft 1.0.6 has no "destroy").
 */
export function removeElementsScript(el: EndpointElements): string {
  const lines: string[] = [];
  for (const m of el.maps) {
    lines.push(`add element ${m.family} ${el.table} ${m.map} { ${m.key}${m.value ? ` : ${m.value}` : ''} }`, `delete element ${m.family} ${el.table} ${m.map} { ${m.key} }`);
  }
  return lines.length ? lines.join('\n') + '\n' : '';
}

export interface HostSide {
  bridge: string;
  hostVeth: string;
  ifname: string;
  netns: string;
  mac: string;
  mtu: number | null;
  hairpin: boolean;
  isolated: boolean;
  vlan: number | null;
  /** "gw/prefix" addresses the bridge carries when it is the gateway. */
  gatewayAddrs: string[];
}

/** One `ip -batch` in the node's namespace: the veth pair (pod end created straight in the pod), its port, the gateway. */
export function hostBatch(h: HostSide): string[] {
  const mtu = h.mtu ? ` mtu ${h.mtu}` : '';
  const lines = [
    `link add ${h.hostVeth}${mtu} type veth peer name ${h.ifname} address ${h.mac}${mtu} netns ${h.netns}`,
    `link set dev ${h.hostVeth} master ${h.bridge}`,
  ];
  if (h.hairpin || h.isolated) {
    lines.push(`link set dev ${h.hostVeth} type bridge_slave hairpin ${h.hairpin ? 'on' : 'off'} isolated ${h.isolated ? 'on' : 'off'}`);
  }
  lines.push(`link set dev ${h.hostVeth} up`);
  for (const a of h.gatewayAddrs) lines.push(`addr replace ${a} dev ${h.bridge}`);
  lines.push(`link set dev ${h.bridge} up`);
  return lines;
}

/** `bridge -batch` lines putting the port in its VLAN (vlan networks only). */
export function vlanBatch(hostVeth: string, vlan: number): string[] {
  return [`vlan del dev ${hostVeth} vid 1`, `vlan add dev ${hostVeth} vid ${vlan} pvid untagged`];
}
