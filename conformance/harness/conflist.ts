import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { existsSync } from 'node:fs';
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

/**
 * Runs a conflist the way libcni does: ADD through the plugins in order with prevResult, the final result
 * cached for DEL and CHECK; DEL in reverse with the cached result; GC and STATUS to every plugin.
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
    writeFileSync(this.cachePath(att), JSON.stringify(prev));
    return prev ?? {};
  }

  cached(att: Attachment): Record<string, unknown> | undefined {
    try {
      return JSON.parse(readFileSync(this.cachePath(att), 'utf8'));
    } catch {
      return undefined;
    }
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

  async gc(valid: Array<{ containerId: string; ifname: string }>): Promise<void> {
    const attachments = valid.map((a) => ({ containerID: a.containerId, ifname: a.ifname }));
    for (const plugin of this.list.plugins) {
      const conf = { ...this.pluginConf(plugin, undefined, undefined), 'cni.dev/valid-attachments': attachments };
      const r = await this.run('GC', plugin, undefined, conf);
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
