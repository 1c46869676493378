// The config keys of cnm-remote and cnm-remote-ipam, validated once.
import { invalidConfig } from '../cni/errors.ts';
import { optBool, optObject, optString, type Json } from '../cni/fields.ts';
import { DEFAULT_TIMEOUT_S, PluginClient } from './client.ts';
import { discoverPlugin } from './discovery.ts';

function timeoutOf(raw: Json, where: string): number {
  const v = raw.timeout;
  if (v === undefined || v === null) return DEFAULT_TIMEOUT_S * 1000;
  if (typeof v !== 'number' || !(v > 0 && v <= 300)) throw invalidConfig(`${where}timeout must be a number of seconds from 0 to 300, not ${JSON.stringify(v)}`);
  return Math.round(v * 1000);
}

function pluginOf(raw: Json, where: string): string {
  const plugin = optString(raw, 'plugin', where);
  if (!plugin) throw invalidConfig(`${where}plugin is missing`, 'name the Docker plugin (as dockerd finds it), or give its socket path or URL');
  return plugin;
}

/** Generic options are strings on Docker's wire: a config's numbers and booleans are sent as their text. */
function stringOptions(raw: Json, key: string, where: string): Record<string, string> {
  const o = optObject(raw, key, where) ?? {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) {
    if (typeof v === 'object' && v !== null) throw invalidConfig(`${where}${key}.${k} must be a string, number or boolean`);
    out[k] = String(v);
  }
  return out;
}

/** cnm-remote: a network served by a Docker network plugin. */
export interface RemoteNetworkOptions {
  plugin: string;
  options: Record<string, string>;
  ipv6: boolean;
  internal: boolean;
  timeoutMs: number;
}

export function parseRemoteNetworkOptions(raw: Json): RemoteNetworkOptions {
  return { plugin: pluginOf(raw, ''), options: stringOptions(raw, 'options', ''), ipv6: optBool(raw, 'ipv6') ?? false, internal: optBool(raw, 'internal') ?? false, timeoutMs: timeoutOf(raw, '') };
}

/** cnm-remote-ipam: addresses from a Docker IPAM plugin. */
export interface RemoteIpamConf {
  plugin: string;
  pool: string;
  subPool: string;
  options: Record<string, string>;
  v6: boolean;
  timeoutMs: number;
}

export function parseRemoteIpamConf(ipam: Json): RemoteIpamConf {
  const w = 'ipam.';
  return {
    plugin: pluginOf(ipam, w),
    pool: optString(ipam, 'pool', w) ?? '',
    subPool: optString(ipam, 'subPool', w) ?? '',
    options: stringOptions(ipam, 'options', w),
    v6: optBool(ipam, 'v6', w) ?? false,
    timeoutMs: timeoutOf(ipam, w),
  };
}

/** A client for the plugin a config names, found by Docker's discovery rules at each call. */
export function clientFor(o: { plugin: string; timeoutMs: number }): PluginClient {
  return new PluginClient(discoverPlugin(o.plugin), o.timeoutMs);
}
