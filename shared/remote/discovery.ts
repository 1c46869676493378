// Docker's plugin discovery (pkg/plugins/discovery.go): a name is looked up as a socket under
// /run/docker/plugins, then as a NAME.spec or NAME.json file in /etc/docker/plugins and /usr/lib/docker/plugins.
// A key may also be an absolute socket path or a URL. Only stat and small reads: cheap on the hot path.
import { existsSync, readFileSync, statSync } from '../kernel/fs.ts';
import { invalidConfig } from '../cni/errors.ts';

/** Where a plugin listens. */
export type PluginAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export interface PluginLocation {
  /** The key it was found by (a name, a path or a URL). */
  plugin: string;
  address: PluginAddress;
}

export interface DiscoveryRoots {
  sockets: string;
  specs: string[];
}

export const DOCKER_ROOTS: DiscoveryRoots = { sockets: '/run/docker/plugins', specs: ['/etc/docker/plugins', '/usr/lib/docker/plugins'] };

/** "unix:///run/x.sock" or "tcp://127.0.0.1:9000"; http:// is read as tcp://. */
export function parsePluginUrl(url: string, where: string): PluginAddress {
  const m = /^(unix|tcp|http):\/\/(.+)$/.exec(url.trim());
  if (!m) throw invalidConfig(`${where}: ${JSON.stringify(url)} is not a unix:// or tcp:// URL`);
  if (m[1] === 'unix') {
    if (!m[2]!.startsWith('/')) throw invalidConfig(`${where}: unix socket ${m[2]} is not an absolute path`);
    return { kind: 'unix', path: m[2]! };
  }
  const hp = /^\[?([^\]/]+?)\]?:(\d+)\/?$/.exec(m[2]!);
  if (!hp) throw invalidConfig(`${where}: ${JSON.stringify(url)} names no host:port`);
  return { kind: 'tcp', host: hp[1]!, port: Number(hp[2]) };
}

const isSocket = (path: string) => {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
};

/** Finds the plugin a config's `plugin` key names, as dockerd would. */
export function discoverPlugin(key: string, roots: DiscoveryRoots = DOCKER_ROOTS): PluginLocation {
  if (key.startsWith('/')) return { plugin: key, address: { kind: 'unix', path: key } };
  if (key.includes('://')) return { plugin: key, address: parsePluginUrl(key, 'plugin') };
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(key)) throw invalidConfig(`plugin ${JSON.stringify(key)} is neither a plugin name, an absolute socket path nor a URL`);
  for (const path of [`${roots.sockets}/${key}.sock`, `${roots.sockets}/${key}/${key}.sock`]) {
    if (isSocket(path)) return { plugin: key, address: { kind: 'unix', path } };
  }
  for (const dir of roots.specs) {
    const spec = `${dir}/${key}.spec`;
    if (existsSync(spec)) return { plugin: key, address: parsePluginUrl(readFileSync(spec, 'utf8'), spec) };
    const json = `${dir}/${key}.json`;
    if (existsSync(json)) return { plugin: key, address: readJsonSpec(json) };
  }
  throw invalidConfig(
    `Docker plugin ${JSON.stringify(key)} was not found: no socket ${roots.sockets}/${key}.sock or ${roots.sockets}/${key}/${key}.sock, no ${key}.spec or ${key}.json in ${roots.specs.join(' or ')}`,
    'start the plugin, or give its socket path or URL in "plugin"',
  );
}

function readJsonSpec(file: string): PluginAddress {
  let spec: { Addr?: unknown; TLSConfig?: { InsecureSkipVerify?: boolean } | null };
  try {
    spec = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw invalidConfig(`plugin spec ${file} is not JSON: ${(err as Error).message}`);
  }
  if (typeof spec.Addr !== 'string') throw invalidConfig(`plugin spec ${file} has no "Addr"`);
  if (spec.TLSConfig) throw invalidConfig(`plugin spec ${file} asks for TLS, which cnm-cni does not speak`, 'serve the plugin on a unix socket or plain tcp');
  return parsePluginUrl(spec.Addr, file);
}

export function describeAddress(a: PluginAddress): string {
  return a.kind === 'unix' ? a.path : `tcp://${a.host}:${a.port}`;
}
