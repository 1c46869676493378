import { createHash } from 'node:crypto';
import { existsSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CniError } from '../../shared/cni/errors.ts';
import type { Json } from '../../shared/cni/fields.ts';
import { DEFAULT_DATA_DIR } from '../../shared/cnm/store.ts';
import { DOCKER_ROOTS } from '../../shared/remote/discovery.ts';
import { serve } from '../../shared/docker/server.ts';
import { driverFor, SERVED_DRIVERS } from './drivers.ts';
import { DEFAULT_DNS_RUN_DIR } from '../../shared/discovery/options.ts';
import { install } from './install.ts';
import { LibCni, loadNetwork, type RuntimeConf } from './libcni.ts';
import { endpointLs, networkInspect, networkLs, networkPrune, networkRm, out, UsageError } from './views.ts';

const USAGE = `usage: cnm [options] COMMAND

The store (what the plugins made):
  network ls              networks: name, driver, subnets, endpoint count, stale endpoints (their kernel
                          state is gone: another boot, or their netns was removed; DEL or GC frees them)
  network inspect NAME    one network: driver, options, subnets, gateways, drift (kernel objects missing), endpoints
  network rm NAME...      remove networks that have no endpoints (links, nft tables, reservations, record)
  network prune           remove every network that has no endpoints
  endpoint ls [NETWORK]   endpoints: network, container, ifname, state (ready, creating, stale), addresses, MAC, netns

A network from a conf dir, as a runtime runs it (cnitool's verbs):
  add NETWORK NETNS       ADD through the network's plugin chain; prints the result
  check NETWORK NETNS     CHECK against the cached result
  del NETWORK NETNS       DEL with the cached result
  gc NETWORK              GC: keeps the attachments in the result cache
  status NETWORK          STATUS of every plugin
  (env as cnitool: NETCONFPATH, CNI_PATH, CNI_IFNAME, CNI_ARGS, CAP_ARGS)

The node:
  dns [--run-dir DIR]     the node's DNS server for networks with serviceDiscovery, in the foreground (an ADD
                          starts it detached when none runs; it stops when no endpoint needs it); --run-dir is
                          the networks' serviceDiscovery.runDir (default ${DEFAULT_DNS_RUN_DIR})
  agent --etcd-endpoints URL --node-name NAME ...
                          the overlay agent (one per node, foreground; cnm agent --help)

The cluster (etcd; the flags default to those of the node's agent, found through --data-dir):
  node ls                 nodes: underlay address, subnets, VTEP MACs, endpoints
  node rm NAME            revoke a node's lease: it leaves every peer at once
  network ls --cluster    overlay networks as global objects: CIDR, VNI, nodes, endpoints
  network inspect NAME --cluster
                          an overlay network: each node's subnet, VTEP and endpoints
  network rm NAME... --cluster
                          remove overlay networks no pod uses anywhere (every agent drops its device)
  (--etcd-endpoints URL[,URL] --etcd-prefix P --etcd-ca/--etcd-cert/--etcd-key FILE)
  install [--bin-dir DIR] [--conf-dir DIR] [--link] [--network NAME --driver bridge|macvlan|ipvlan|overlay --subnet CIDR
          [--bridge NAME] [--master IF] [--etcd-endpoints URL[,URL] --etcd-prefix P]] [--force]
                          executables into the bin dir (default /opt/cni/bin) and a conflist into the conf dir
                          (default /etc/cni/net.d); an existing conflist is replaced only with --force;
                          --data-dir puts a store other than the default into the conflist, --cni-version sets
                          its cniVersion (default 1.0.0, what containerd 1.6 and podman 4 speak)

Docker's plugin API (cnm-cni's drivers and cnm-host-local served to dockerd):
  plugin serve --socket PATH | --name NAME [--driver bridge|macvlan|ipvlan|null|overlay]
                          serves libnetwork's remote protocol in the foreground until SIGTERM; --name puts the
                          socket where dockerd looks (/run/docker/plugins/NAME.sock); then
                          docker network create -d NAME --ipam-driver NAME --subnet CIDR [-o key=value] NET
                          (overlay: --data-dir is the agent's; docker network create -d NAME --ipam-driver null
                          -o etcdEndpoints=URL,URL -o network=CIDR -o vni=N [-o name=POD_NETWORK] NET)

Options: --data-dir DIR (the store, default ${DEFAULT_DATA_DIR}), --json, --conf-dir, --bin-dir, --cache-dir
(libcni's, default /var/lib/cni), --ifname
`;

/** cnitool names a netns's attachment after the netns path. */
function containerIdFor(netns: string): string {
  return `cnitool-${createHash('sha512').update(netns).digest('hex').slice(0, 20)}`;
}

function runtimeConf(netns: string, ifname: string): RuntimeConf {
  let capabilityArgs: Json = {};
  if (process.env.CAP_ARGS) {
    try {
      capabilityArgs = JSON.parse(process.env.CAP_ARGS) as Json;
    } catch (err) {
      throw new UsageError(`CAP_ARGS is not JSON: ${(err as Error).message}`);
    }
  }
  return { containerId: containerIdFor(netns), netns, ifname, args: process.env.CNI_ARGS ?? '', capabilityArgs };
}

function main(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'data-dir': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
      'conf-dir': { type: 'string' },
      'bin-dir': { type: 'string' },
      'cache-dir': { type: 'string' },
      ifname: { type: 'string' },
      link: { type: 'boolean', default: false },
      force: { type: 'boolean', default: false },
      network: { type: 'string' },
      driver: { type: 'string' },
      subnet: { type: 'string' },
      bridge: { type: 'string' },
      master: { type: 'string' },
      'cni-version': { type: 'string' },
      socket: { type: 'string' },
      name: { type: 'string' },
      'run-dir': { type: 'string' },
      'etcd-endpoints': { type: 'string' },
      'etcd-prefix': { type: 'string' },
    },
  });
  if (values.help || positionals.length === 0) {
    out(USAGE);
    return values.help ? 0 : 2;
  }
  const dataDir = values['data-dir'] ?? DEFAULT_DATA_DIR;
  const json = values.json ?? false;
  const [group, verb, arg] = positionals;
  const confDir = values['conf-dir'] ?? process.env.NETCONFPATH ?? '/etc/cni/net.d';
  const binDirs = values['bin-dir'] ? [values['bin-dir']] : (process.env.CNI_PATH ?? '/opt/cni/bin').split(':').filter(Boolean);
  const libcni = () => new LibCni(binDirs, values['cache-dir'] ?? '/var/lib/cni');
  const ifname = values.ifname ?? process.env.CNI_IFNAME ?? 'eth0';

  switch (group) {
    case 'dns':
      // Loaded only here: the DNS wire library never costs a plugin's start-up.
      return (require('./dns.ts') as typeof import('./dns.ts')).runDns(values['run-dir'] ?? DEFAULT_DNS_RUN_DIR);
    case 'add':
    case 'check':
    case 'del': {
      if (!verb || !arg) throw new UsageError(`${group} needs NETWORK and NETNS`);
      const list = loadNetwork(confDir, verb);
      const rt = runtimeConf(arg, ifname);
      if (group === 'add') out(JSON.stringify(libcni().add(list, rt), null, 2) + '\n');
      else if (group === 'check') libcni().check(list, rt);
      else libcni().del(list, rt);
      return 0;
    }
    case 'gc':
    case 'status':
      if (!verb) throw new UsageError(`${group} needs NETWORK`);
      if (group === 'gc') libcni().gc(loadNetwork(confDir, verb));
      else libcni().status(loadNetwork(confDir, verb));
      return 0;
    case 'plugin': {
      if (verb !== 'serve') throw new UsageError(`unknown command "plugin ${verb ?? ''}": plugin serve is the one`);
      if (!values.socket === !values.name) throw new UsageError('plugin serve needs one of --socket PATH or --name NAME');
      if (values.name && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(values.name)) throw new UsageError(`--name ${JSON.stringify(values.name)} is not a plugin name`);
      const driver = values.driver ?? 'bridge';
      if (!SERVED_DRIVERS.includes(driver)) throw new UsageError(`--driver must be one of ${SERVED_DRIVERS.join(', ')}`);
      const socket = values.socket ?? `${DOCKER_ROOTS.sockets}/${values.name}.sock`;
      serve({ socket, driver: driverFor(driver), dataDir }).then(
        () => (process.exitCode = 0),
        (err: unknown) => {
          writeSync(2, `cnm: ${err instanceof CniError ? err.msg : (err as Error).message}\n`);
          process.exit(1);
        },
      );
      return 0;
    }
    case 'install': {
      const network = values.network;
      if (network && (!values.driver || (!values.subnet && ['bridge', 'macvlan', 'ipvlan', 'overlay'].includes(values.driver)))) {
        throw new UsageError('--network needs --driver, and --subnet for bridge, macvlan, ipvlan and overlay (its cluster CIDR)');
      }
      if (values.driver === 'overlay' && !values['etcd-endpoints']) throw new UsageError('--driver overlay needs --etcd-endpoints URL[,URL]');
      const done = install({
        binDir: values['bin-dir'] ?? '/opt/cni/bin',
        confDir: values['conf-dir'] ?? '/etc/cni/net.d',
        link: values.link ?? false,
        force: values.force ?? false,
        ...(network ? { network: { name: network, driver: values.driver!, subnet: values.subnet ?? '', ...(values.bridge ? { bridge: values.bridge } : {}), ...(values.master ? { master: values.master } : {}), ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}), ...(values['cni-version'] ? { cniVersion: values['cni-version'] } : {}), ...(values['etcd-endpoints'] ? { etcdEndpoints: values['etcd-endpoints'].split(',').filter(Boolean) } : {}), ...(values['etcd-prefix'] ? { etcdPrefix: values['etcd-prefix'] } : {}) } } : {}),
      });
      out(done.map((d) => `${d}\n`).join(''));
      return 0;
    }
  }

  if (!existsSync(dataDir) && !(group === 'network' && (verb === 'ls' || verb === 'prune')) && !(group === 'endpoint' && verb === 'ls' && !arg)) {
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

function fail(err: unknown): void {
  const msg = err instanceof CniError ? `${err.msg}${err.details ? ` (${err.details})` : ''}` : (err as Error).message;
  writeSync(2, `cnm: ${msg}\n`);
  process.exitCode = err instanceof UsageError || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? 2 : 1;
}

const argv = process.argv.slice(2);
const asyncCommands: Record<string, (args: string[]) => Promise<number>> = {
  agent: (args) => (require('./agent.ts') as typeof import('./agent.ts')).agentCommand(args),
  node: (args) => (require('./cluster.ts') as typeof import('./cluster.ts')).clusterCommand(['node', ...args]),
};
/** Overlay networks are the cluster's: with --etcd-endpoints or --cluster, network ls/inspect read etcd. */
const clusterView = argv[0] === 'network' && (argv.includes('--cluster') || argv.some((a) => a.startsWith('--etcd-endpoints')));
const longRunning = clusterView
  ? (args: string[]) => (require('./cluster.ts') as typeof import('./cluster.ts')).clusterCommand(args.filter((a) => a !== '--cluster'))
  : asyncCommands[argv[0] ?? ''];
if (longRunning) {
  longRunning(clusterView ? argv : argv.slice(1)).then(
    (code) => {
      process.exitCode = code;
    },
    fail,
  );
} else {
  try {
    process.exitCode = main(argv);
  } catch (err) {
    fail(err);
  }
}
