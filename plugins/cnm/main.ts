import { existsSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CniError } from '../../shared/cni/errors.ts';
import { Log } from '../../shared/cni/log.ts';
import { listEndpoints, listNetworks, readNetwork } from '../../shared/cnm/inventory.ts';
import { removeNetwork } from '../../shared/cnm/removal.ts';
import { driverFor } from './drivers.ts';
import type { EndpointRecord, NetworkRecord } from '../../shared/cnm/records.ts';
import { DEFAULT_DATA_DIR } from '../../shared/cnm/store.ts';
import { table } from './table.ts';

const USAGE = `usage: cnm [--data-dir DIR] [--json] COMMAND

  network ls              networks: name, driver, subnets, endpoint count
  network inspect NAME    one network: driver, options, subnets, gateways, endpoints
  network rm NAME...      remove networks that have no endpoints (bridge, nft tables, reservations, record)
  network prune           remove every network that has no endpoints
  endpoint ls [NETWORK]   endpoints: network, container, ifname, addresses, MAC, netns

  --data-dir DIR   the store to read (default ${DEFAULT_DATA_DIR})
  --json           machine-readable output
`;

class UsageError extends Error {}

const out = (text: string) => writeSync(1, text);

function addresses(ep: EndpointRecord): string {
  return ep.ips.map((ip) => ip.address).join(',') || '-';
}

function networkView(net: NetworkRecord, endpoints: EndpointRecord[]) {
  return {
    name: net.name,
    driver: net.driver,
    options: net.options,
    ipam: net.ipamType ?? null,
    subnets: net.subnets,
    created: net.created,
    endpoints: endpoints.map((ep) => ({
      containerId: ep.containerId,
      ifname: ep.ifname,
      state: ep.state,
      addresses: ep.ips.map((ip) => ip.address),
      mac: ep.mac ?? null,
      netns: ep.netns,
    })),
  };
}

function networkLs(dataDir: string, json: boolean): void {
  const nets = listNetworks(dataDir).map((n) => ({ net: n, endpoints: listEndpoints(dataDir, n.name).length }));
  if (json) {
    out(JSON.stringify(nets.map(({ net, endpoints }) => ({ name: net.name, driver: net.driver, subnets: net.subnets.map((s) => s.subnet), endpoints })), null, 2) + '\n');
    return;
  }
  out(table(['NAME', 'DRIVER', 'SUBNETS', 'ENDPOINTS'], nets.map(({ net, endpoints }) => [net.name, net.driver, net.subnets.map((s) => s.subnet).join(',') || '-', String(endpoints)])));
}

function networkInspect(dataDir: string, name: string | undefined, json: boolean): void {
  if (!name) throw new UsageError('network inspect needs a network name');
  const net = readNetwork(dataDir, name);
  if (!net) throw new UsageError(`no network named ${JSON.stringify(name)} in ${dataDir} ("cnm network ls" lists them)`);
  const view = networkView(net, listEndpoints(dataDir, name));
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
    `Endpoints: ${view.endpoints.length}`,
  ];
  out(lines.join('\n') + '\n');
  if (view.endpoints.length) {
    out('\n' + table(['CONTAINER', 'IFNAME', 'STATE', 'ADDRESSES', 'MAC', 'NETNS'], view.endpoints.map((e) => [e.containerId, e.ifname, e.state, e.addresses.join(',') || '-', e.mac ?? '-', e.netns || '-'])));
  }
}

function endpointLs(dataDir: string, network: string | undefined, json: boolean): void {
  if (network && !readNetwork(dataDir, network)) throw new UsageError(`no network named ${JSON.stringify(network)} in ${dataDir}`);
  const eps = listEndpoints(dataDir, network);
  if (json) {
    out(JSON.stringify(eps.map((ep) => ({ network: ep.network, containerId: ep.containerId, ifname: ep.ifname, state: ep.state, addresses: ep.ips.map((ip) => ip.address), mac: ep.mac ?? null, netns: ep.netns })), null, 2) + '\n');
    return;
  }
  out(table(['NETWORK', 'CONTAINER', 'IFNAME', 'STATE', 'ADDRESSES', 'MAC', 'NETNS'], eps.map((ep) => [ep.network, ep.containerId, ep.ifname, ep.state, addresses(ep), ep.mac ?? '-', ep.netns || '-'])));
}

function networkRm(dataDir: string, names: string[]): number {
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

function networkPrune(dataDir: string): number {
  const unused = listNetworks(dataDir).filter((n) => listEndpoints(dataDir, n.name).length === 0);
  if (unused.length === 0) return 0;
  return networkRm(dataDir, unused.map((n) => n.name));
}

function main(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { 'data-dir': { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help || positionals.length === 0) {
    out(USAGE);
    return values.help ? 0 : 2;
  }
  const dataDir = values['data-dir'] ?? DEFAULT_DATA_DIR;
  const json = values.json ?? false;
  const [group, verb, arg] = positionals;
  if (!existsSync(dataDir) && !(group === 'network' && verb === 'ls') && !(group === 'endpoint' && verb === 'ls' && !arg)) {
    throw new UsageError(`the store ${dataDir} does not exist (no plugin has run with it yet, or --data-dir is wrong)`);
  }
  const key = `${group} ${verb ?? ''}`.trim();
  switch (key) {
    case 'network ls':
      networkLs(dataDir, json);
      return 0;
    case 'network inspect':
      networkInspect(dataDir, arg, json);
      return 0;
    case 'endpoint ls':
      endpointLs(dataDir, arg, json);
      return 0;
    case 'network rm':
      return networkRm(dataDir, positionals.slice(2));
    case 'network prune':
      return networkPrune(dataDir);
    default:
      throw new UsageError(`unknown command "${key}"\n\n${USAGE}`);
  }
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (err) {
  const msg = err instanceof CniError ? `${err.msg}${err.details ? ` (${err.details})` : ''}` : (err as Error).message;
  writeSync(2, `cnm: ${msg}\n`);
  process.exitCode = err instanceof UsageError || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? 2 : 1;
}
