// The operator's views of the store: what `docker network ls / inspect` shows of Docker's.
import { writeSync } from 'node:fs';
import { CniError } from '../../shared/cni/errors.ts';
import { Log } from '../../shared/cni/log.ts';
import { listEndpoints, listNetworks, readNetwork } from '../../shared/cnm/inventory.ts';
import type { EndpointRecord, NetworkRecord } from '../../shared/cnm/records.ts';
import { operatorContext, removeNetwork } from '../../shared/cnm/removal.ts';
import { bootId } from '../../shared/kernel/boot.ts';
import { netnsState } from '../../shared/kernel/netns.ts';
import { driverFor } from './drivers.ts';
import { table } from './table.ts';

export class UsageError extends Error {}

export const out = (text: string) => writeSync(1, text);

function addresses(ep: EndpointRecord): string {
  return ep.ips.map((ip) => ip.address).join(',') || '-';
}

/**
 * Why an endpoint describes a kernel that is gone, or null: made in another boot (a reboot took its links and
 * its namespace), or its namespace is gone. Its addresses stay reserved until the runtime's DEL or GC.
 */
function staleness(ep: EndpointRecord): string | null {
  if (ep.boot && ep.boot !== bootId()) return 'made before the last reboot';
  if (ep.netns && netnsState(ep.netns) === 'missing') return `netns ${ep.netns} is gone`;
  return null;
}

const stateText = (ep: EndpointRecord) => (staleness(ep) ? 'stale' : ep.state);

function networkView(dataDir: string, net: NetworkRecord, endpoints: EndpointRecord[]) {
  return {
    name: net.name,
    driver: net.driver,
    options: net.options,
    ipam: net.ipamType ?? null,
    subnets: net.subnets,
    created: net.created,
    drift: driverFor(net.driver).networkDrift(operatorContext(dataDir, net.name, new Log('cnm')), net),
    endpoints: endpoints.map((ep) => ({
      containerId: ep.containerId,
      ifname: ep.ifname,
      state: ep.state,
      stale: staleness(ep),
      addresses: ep.ips.map((ip) => ip.address),
      mac: ep.mac ?? null,
      netns: ep.netns,
    })),
  };
}

export function networkLs(dataDir: string, json: boolean): void {
  const nets = listNetworks(dataDir).map((n) => {
    const eps = listEndpoints(dataDir, n.name);
    return { net: n, endpoints: eps.length, stale: eps.filter((ep) => staleness(ep)).length };
  });
  if (json) {
    out(JSON.stringify(nets.map(({ net, endpoints, stale }) => ({ name: net.name, driver: net.driver, subnets: net.subnets.map((s) => s.subnet), endpoints, stale })), null, 2) + '\n');
    return;
  }
  out(table(['NAME', 'DRIVER', 'SUBNETS', 'ENDPOINTS', 'STALE'], nets.map(({ net, endpoints, stale }) => [net.name, net.driver, net.subnets.map((s) => s.subnet).join(',') || '-', String(endpoints), String(stale)])));
}

export function networkInspect(dataDir: string, name: string | undefined, json: boolean): void {
  if (!name) throw new UsageError('network inspect needs a network name');
  const net = readNetwork(dataDir, name);
  if (!net) throw new UsageError(`no network named ${JSON.stringify(name)} in ${dataDir} ("cnm network ls" lists them)`);
  const view = networkView(dataDir, net, listEndpoints(dataDir, name));
  if (json) {
    out(JSON.stringify(view, null, 2) + '\n');
    return;
  }
  const lines = [
    `Name:      ${view.name}`,
    `Driver:    ${view.driver}`,
    `IPAM:      ${view.ipam ?? '-'}`,
    `Created:   ${view.created}`,
    `Options:   ${Object.keys(view.options).length ? JSON.stringify(view.options) : '-'}`,
    `Subnets:   ${view.subnets.map((s) => `${s.subnet}${s.gateway ? ` gateway ${s.gateway}` : ''}`).join(', ') || '-'}`,
    `Endpoints: ${view.endpoints.length}${view.endpoints.some((e) => e.stale) ? ` (${view.endpoints.filter((e) => e.stale).length} stale)` : ''}`,
    `Drift:     ${view.drift.join('; ') || '-'}`,
  ];
  out(lines.join('\n') + '\n');
  if (view.endpoints.length) {
    out('\n' + table(['CONTAINER', 'IFNAME', 'STATE', 'ADDRESSES', 'MAC', 'NETNS'], view.endpoints.map((e) => [e.containerId, e.ifname, e.stale ? 'stale' : e.state, e.addresses.join(',') || '-', e.mac ?? '-', e.netns || '-'])));
  }
}

export function endpointLs(dataDir: string, network: string | undefined, json: boolean): void {
  if (network && !readNetwork(dataDir, network)) throw new UsageError(`no network named ${JSON.stringify(network)} in ${dataDir}`);
  const eps = listEndpoints(dataDir, network);
  if (json) {
    out(JSON.stringify(eps.map((ep) => ({ network: ep.network, containerId: ep.containerId, ifname: ep.ifname, state: ep.state, stale: staleness(ep), boot: ep.boot ?? null, addresses: ep.ips.map((ip) => ip.address), mac: ep.mac ?? null, netns: ep.netns })), null, 2) + '\n');
    return;
  }
  out(table(['NETWORK', 'CONTAINER', 'IFNAME', 'STATE', 'ADDRESSES', 'MAC', 'NETNS'], eps.map((ep) => [ep.network, ep.containerId, ep.ifname, stateText(ep), addresses(ep), ep.mac ?? '-', ep.netns || '-'])));
}

export function networkRm(dataDir: string, names: string[]): number {
  if (names.length === 0) throw new UsageError('network rm needs at least one network name');
  let failed = 0;
  for (const name of names) {
    try {
      removeNetwork(dataDir, name, driverFor, new Log('cnm'));
      out(`${name}\n`);
    } catch (err) {
      failed++;
      writeSync(2, `cnm: ${err instanceof CniError ? `${err.msg}${err.details ? ` (${err.details})` : ''}` : (err as Error).message}\n`);
    }
  }
  return failed ? 1 : 0;
}

export function networkPrune(dataDir: string): number {
  const unused = listNetworks(dataDir).filter((n) => listEndpoints(dataDir, n.name).length === 0);
  if (unused.length === 0) return 0;
  return networkRm(dataDir, unused.map((n) => n.name));
}

