// What libcni does for a runtime, for the operator CLI's add / check / del / gc / status (cnitool's verbs):
// find a network's config by name in a conf dir, run its plugin chain with prevResult, keep the result in
// libcni's cache for DEL and CHECK, and collect the cached attachments for GC.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execPlugin, findPlugin, pluginEnv } from '../../shared/cni/delegate.ts';
import { CniError, ErrorCode } from '../../shared/cni/errors.ts';
import type { Json } from '../../shared/cni/fields.ts';
import { atLeast } from '../../shared/cni/version.ts';

export interface NetworkConfigList {
  name: string;
  cniVersion: string;
  plugins: Json[];
  file: string;
}

export interface RuntimeConf {
  containerId: string;
  netns: string;
  ifname: string;
  /** CNI_ARGS as given. */
  args: string;
  /** Values for the capabilities plugins declare (portMappings, ips, mac...). */
  capabilityArgs: Json;
}

interface CacheEntry {
  kind: 'cniCacheV1';
  containerId: string;
  ifName: string;
  networkName: string;
  netns: string;
  cniArgs: string;
  capabilityArgs: Json;
  result: Json;
}

/** The network named `name` among a conf dir's *.conflist, *.conf and *.json files, in name order as libcni reads them. */
export function loadNetwork(confDir: string, name: string): NetworkConfigList {
  let files: string[];
  try {
    files = readdirSync(confDir).filter((f) => /\.(conflist|conf|json)$/.test(f)).sort();
  } catch (err) {
    throw new CniError(ErrorCode.InvalidConfig, `cannot read the conf dir ${confDir}: ${(err as Error).message}`);
  }
  for (const f of files) {
    let raw: Json;
    try {
      raw = JSON.parse(readFileSync(join(confDir, f), 'utf8')) as Json;
    } catch {
      continue;
    }
    if (raw.name !== name) continue;
    const plugins = Array.isArray(raw.plugins) ? (raw.plugins as Json[]) : [raw];
    return { name, cniVersion: String(raw.cniVersion ?? '0.1.0'), plugins, file: join(confDir, f) };
  }
  throw new CniError(ErrorCode.InvalidConfig, `no network named ${JSON.stringify(name)} in ${confDir}`, `networks there: ${files.join(', ') || 'none'}`);
}

export class LibCni {
  constructor(
    readonly binDirs: string[],
    readonly cacheDir: string,
  ) {}

  private cachePath(net: string, containerId: string, ifname: string): string {
    return join(this.cacheDir, 'results', `${net}-${containerId}-${ifname}`);
  }

  private pluginConf(list: NetworkConfigList, plugin: Json, rt: RuntimeConf | undefined, prevResult: Json | undefined): Json {
    const conf: Json = { ...plugin, name: list.name, cniVersion: list.cniVersion };
    const caps = (plugin.capabilities ?? {}) as Record<string, boolean>;
    const runtimeConfig: Json = {};
    for (const [k, v] of Object.entries(rt?.capabilityArgs ?? {})) if (caps[k]) runtimeConfig[k] = v;
    if (Object.keys(runtimeConfig).length) conf.runtimeConfig = runtimeConfig;
    if (prevResult) conf.prevResult = prevResult;
    return conf;
  }

  private exec(command: string, plugin: Json, rt: RuntimeConf | undefined, conf: Json): Json | undefined {
    const type = String(plugin.type ?? '');
    const vars: Record<string, string> = { CNI_COMMAND: command, CNI_PATH: this.binDirs.join(':') };
    if (rt) Object.assign(vars, { CNI_CONTAINERID: rt.containerId, CNI_NETNS: rt.netns, CNI_IFNAME: rt.ifname, CNI_ARGS: rt.args });
    const out = execPlugin(findPlugin(type, this.binDirs), type, pluginEnv(vars), JSON.stringify(conf));
    return out ? (JSON.parse(out) as Json) : undefined;
  }

  add(list: NetworkConfigList, rt: RuntimeConf): Json {
    let prev: Json | undefined;
    for (const plugin of list.plugins) prev = this.exec('ADD', plugin, rt, this.pluginConf(list, plugin, rt, prev));
    const entry: CacheEntry = { kind: 'cniCacheV1', containerId: rt.containerId, ifName: rt.ifname, networkName: list.name, netns: rt.netns, cniArgs: rt.args, capabilityArgs: rt.capabilityArgs, result: prev ?? {} };
    const file = this.cachePath(list.name, rt.containerId, rt.ifname);
    mkdirSync(join(this.cacheDir, 'results'), { recursive: true, mode: 0o700 });
    writeFileSync(`${file}.tmp`, JSON.stringify(entry), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
    return prev ?? {};
  }

  cached(list: NetworkConfigList, containerId: string, ifname: string): CacheEntry | undefined {
    try {
      return JSON.parse(readFileSync(this.cachePath(list.name, containerId, ifname), 'utf8')) as CacheEntry;
    } catch {
      return undefined;
    }
  }

  check(list: NetworkConfigList, rt: RuntimeConf): void {
    const cached = this.cached(list, rt.containerId, rt.ifname);
    if (!cached) throw new CniError(ErrorCode.InvalidConfig, `no cached result for ${rt.containerId}/${rt.ifname} on ${list.name}: was it added?`);
    for (const plugin of list.plugins) this.exec('CHECK', plugin, rt, this.pluginConf(list, plugin, rt, cached.result));
  }

  del(list: NetworkConfigList, rt: RuntimeConf): void {
    const cached = this.cached(list, rt.containerId, rt.ifname);
    for (const plugin of [...list.plugins].reverse()) this.exec('DEL', plugin, rt, this.pluginConf(list, plugin, rt, cached?.result));
    rmSync(this.cachePath(list.name, rt.containerId, rt.ifname), { force: true });
  }

  /** The attachments libcni's cache holds for a network: what GC keeps. */
  cachedAttachments(list: NetworkConfigList): Array<{ containerID: string; ifname: string }> {
    let names: string[] = [];
    try {
      names = readdirSync(join(this.cacheDir, 'results'));
    } catch {
      return [];
    }
    return names
      .filter((n) => n.startsWith(`${list.name}-`) && !n.endsWith('.tmp'))
      .map((n) => JSON.parse(readFileSync(join(this.cacheDir, 'results', n), 'utf8')) as CacheEntry)
      .filter((e) => e.networkName === list.name)
      .map((e) => ({ containerID: e.containerId, ifname: e.ifName }));
  }

  /** As libcni: GC and STATUS exist from cniVersion 1.1.0; older networks have nothing to run. */
  gc(list: NetworkConfigList): void {
    if (!atLeast(list.cniVersion, '1.1.0')) return;
    const valid = this.cachedAttachments(list);
    // Under both keys, as libcni 1.2.3+ sends them (the spec's name and its earlier spelling).
    const keys = { 'cni.dev/valid-attachments': valid, 'cni.dev/attachments': valid };
    for (const plugin of list.plugins) this.exec('GC', plugin, undefined, { ...this.pluginConf(list, plugin, undefined, undefined), ...keys });
  }

  status(list: NetworkConfigList): void {
    if (!atLeast(list.cniVersion, '1.1.0')) return;
    for (const plugin of list.plugins) this.exec('STATUS', plugin, undefined, this.pluginConf(list, plugin, undefined, undefined));
  }
}
