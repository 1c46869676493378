import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { atLeast } from '../../shared/cni/version.ts';
import { invoke, type Invocation } from './plugin.ts';

/** A network configuration list, as runtimes read it from /etc/cni/net.d. */
export interface Conflist {
  cniVersion: string;
  name: string;
  plugins: Array<Record<string, unknown> & { type: string }>;
}

export interface Attachment {
  containerId: string;
  netns: string;
  ifname: string;
  args?: string;
  /** Values for the capabilities a plugin declares (portMappings, ips...). */
  capabilityArgs?: Record<string, unknown>;
}

export class ChainError extends Error {
  constructor(
    readonly plugin: string,
    readonly reply: Invocation,
  ) {
    super(`${plugin}: ${reply.stdout || reply.stderr}`);
  }
}

/** libcni's cache entry (results/NETWORK-CONTAINER-IFNAME): what DEL, CHECK and GC read back. */
interface CacheEntry {
  kind: 'cniCacheV1';
  containerId: string;
  ifName: string;
  networkName: string;
  netns?: string;
  cniArgs?: string;
  capabilityArgs?: Record<string, unknown>;
  result: Record<string, unknown>;
}

/** The GC attachment libcni marshals: `{"containerID", "ifname"}`. */
export interface GcAttachment {
  containerID: string;
  ifname: string;
}

/**
 * Runs a conflist the way libcni (1.2.3 and later: the spec-1.1 GC) does: ADD through the plugins in order with
 * prevResult, the final result cached for DEL and CHECK; DEL in reverse with the cached result; GC and STATUS to
 * every plugin.
 */
export class ConflistRunner {
  constructor(
    readonly list: Conflist,
    readonly binDirs: string[],
    readonly cacheDir: string,
  ) {}

  private cachePath(att: Attachment): string {
    return `${this.cacheDir}/results/${this.list.name}-${att.containerId}-${att.ifname}`;
  }

  private pluginConf(plugin: Conflist['plugins'][number], att: Attachment | undefined, prevResult: unknown): Record<string, unknown> {
    const conf: Record<string, unknown> = { ...plugin, name: this.list.name, cniVersion: this.list.cniVersion };
    const caps = (plugin.capabilities ?? {}) as Record<string, boolean>;
    const runtimeConfig: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(att?.capabilityArgs ?? {})) if (caps[key]) runtimeConfig[key] = value;
    if (Object.keys(runtimeConfig).length) conf.runtimeConfig = runtimeConfig;
    if (prevResult !== undefined) conf.prevResult = prevResult;
    return conf;
  }

  private find(type: string): string {
    for (const dir of this.binDirs) if (existsSync(`${dir}/${type}`)) return `${dir}/${type}`;
    throw new Error(`plugin ${type} not found in ${this.binDirs.join(':')}`);
  }

  private run(command: string, plugin: Conflist['plugins'][number], att: Attachment | undefined, stdin: object): Promise<Invocation> {
    return invoke(
      this.find(plugin.type),
      { command, containerId: att?.containerId, netns: att?.netns, ifname: att?.ifname, args: att?.args, path: this.binDirs.join(':') },
      stdin,
    );
  }

  async add(att: Attachment): Promise<Record<string, unknown>> {
    let prev: Record<string, unknown> | undefined;
    for (const plugin of this.list.plugins) {
      const r = await this.run('ADD', plugin, att, this.pluginConf(plugin, att, prev));
      if (r.exitCode !== 0) throw new ChainError(plugin.type, r);
      prev = r.json;
    }
    mkdirSync(`${this.cacheDir}/results`, { recursive: true });
    const entry: CacheEntry = {
      kind: 'cniCacheV1',
      containerId: att.containerId,
      ifName: att.ifname,
      networkName: this.list.name,
      netns: att.netns,
      cniArgs: att.args,
      capabilityArgs: att.capabilityArgs,
      result: prev ?? {},
    };
    writeFileSync(this.cachePath(att), JSON.stringify(entry));
    return prev ?? {};
  }

  private cacheEntry(file: string): CacheEntry | undefined {
    try {
      const entry = JSON.parse(readFileSync(file, 'utf8')) as CacheEntry;
      return entry.kind === 'cniCacheV1' ? entry : undefined;
    } catch {
      return undefined;
    }
  }

  cached(att: Attachment): Record<string, unknown> | undefined {
    return this.cacheEntry(this.cachePath(att))?.result;
  }

  async check(att: Attachment): Promise<void> {
    const prev = this.cached(att);
    if (!prev) throw new Error(`no cached result for ${att.containerId}`);
    for (const plugin of this.list.plugins) {
      const r = await this.run('CHECK', plugin, att, this.pluginConf(plugin, att, prev));
      if (r.exitCode !== 0) throw new ChainError(plugin.type, r);
    }
  }

  async del(att: Attachment): Promise<void> {
    const prev = this.cached(att);
    for (const plugin of [...this.list.plugins].reverse()) {
      const r = await this.run('DEL', plugin, att, this.pluginConf(plugin, att, prev));
      if (r.exitCode !== 0) throw new ChainError(plugin.type, r);
    }
    rmSync(this.cachePath(att), { force: true });
  }

  /** The attachments this network's cache holds, as libcni's GetCachedAttachments reads them. */
  cachedAttachments(): Attachment[] {
    let names: string[] = [];
    try {
      names = readdirSync(`${this.cacheDir}/results`).sort();
    } catch {
      return [];
    }
    return names
      .map((n) => this.cacheEntry(`${this.cacheDir}/results/${n}`))
      .filter((e): e is CacheEntry => e !== undefined && e.networkName === this.list.name && e.ifName !== '')
      .map((e) => ({ containerId: e.containerId, netns: e.netns ?? '', ifname: e.ifName, args: e.cniArgs, capabilityArgs: e.capabilityArgs }));
  }

  /**
   * libcni's GCNetworkList: a DEL for every cached attachment not listed valid, then (cniVersion 1.1.0+) GC to
   * every plugin with no attachment env. `valid` undefined is cnitool's `gc` (GCArgs nil): no list is sent and
   * nothing is valid; a list is sent under both keys, the spec's and its earlier spelling, as libcni 1.2.3+ does.
   */
  async gc(valid?: GcAttachment[]): Promise<void> {
    const keep = new Set((valid ?? []).map((a) => `${a.containerID}/${a.ifname}`));
    for (const att of this.cachedAttachments()) {
      if (!keep.has(`${att.containerId}/${att.ifname}`)) await this.del(att);
    }
    if (!atLeast(this.list.cniVersion, '1.1.0')) return;
    const inject: Record<string, unknown> = { name: this.list.name, cniVersion: this.list.cniVersion };
    if (valid) Object.assign(inject, { 'cni.dev/valid-attachments': valid, 'cni.dev/attachments': valid });
    for (const plugin of this.list.plugins) {
      const r = await invoke(this.find(plugin.type), { command: 'GC', containerId: '', netns: '', ifname: '', args: '', path: this.binDirs.join(':') }, { ...plugin, ...inject });
      if (r.exitCode !== 0) throw new ChainError(plugin.type, r);
    }
  }

  async status(): Promise<void> {
    for (const plugin of this.list.plugins) {
      const r = await this.run('STATUS', plugin, undefined, this.pluginConf(plugin, undefined, undefined));
      if (r.exitCode !== 0) throw new ChainError(plugin.type, r);
    }
  }
}

