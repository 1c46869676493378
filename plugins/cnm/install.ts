// `cnm install`: puts the executables into a CNI bin dir and, asked to, a network's conflist into a conf dir.
import { copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CniError, ErrorCode } from '../../shared/cni/errors.ts';
import { isSupportedVersion, SUPPORTED_VERSIONS } from '../../shared/cni/version.ts';
import { LOOPBACK, PLUGIN_NAMES } from '../names.ts';

export interface InstallOptions {
  binDir: string;
  confDir: string;
  /** Symlink to the running executable instead of copying it. */
  link: boolean;
  force: boolean;
  network?: { name: string; driver: string; subnet: string; bridge?: string; master?: string; dataDir?: string; cniVersion?: string; etcdEndpoints?: string[]; etcdPrefix?: string };
}

function fail(msg: string, details = ''): never {
  throw new CniError(ErrorCode.InvalidConfig, msg, details);
}

/** Replaces dest with a hard link (or copy) of src, atomically: a plugin being run keeps its old file. */
function placeAtomically(dest: string, make: (tmp: string) => void): void {
  const tmp = `${dest}.cnm-install-${process.pid}`;
  rmSync(tmp, { force: true });
  make(tmp);
  renameSync(tmp, dest);
}

/** The conflist a `--network` install writes: cnm-bridge (or macvlan/ipvlan) with in-process IPAM, or cnm-overlay. */
export function conflistFor(n: NonNullable<InstallOptions['network']>): Record<string, unknown> {
  const ipam = { type: 'cnm-host-local', ranges: [[{ subnet: n.subnet }]] };
  let plugin: Record<string, unknown>;
  if (n.driver === 'bridge') {
    plugin = { type: 'cnm-bridge', bridge: n.bridge ?? 'cnm0', isGateway: true, isDefaultGateway: true, ipMasq: true, hairpinMode: true, capabilities: { portMappings: true }, ipam };
  } else if (n.driver === 'overlay') {
    // No ipam: each node's agent leases the node a share of the cluster CIDR.
    plugin = { type: 'cnm-overlay', etcdEndpoints: n.etcdEndpoints ?? [], ...(n.etcdPrefix ? { etcdPrefix: n.etcdPrefix } : {}), network: n.subnet, ipMasq: true, hairpinMode: true, capabilities: { portMappings: true } };
  } else if (n.driver === 'macvlan' || n.driver === 'ipvlan') {
    plugin = { type: `cnm-${n.driver}`, ...(n.master ? { master: n.master } : {}), ipam };
  } else {
    plugin = { type: `cnm-${n.driver}` };
  }
  if (n.dataDir) plugin.dataDir = n.dataDir;
  // containerd 1.6 and podman 4 speak CNI up to 1.0.0: the default until the runtime says more.
  return { cniVersion: n.cniVersion ?? '1.0.0', name: n.name, plugins: [plugin] };
}

export function install(o: InstallOptions): string[] {
  const done: string[] = [];
  const self = process.execPath;
  if (!existsSync(self)) fail(`cannot find the running executable at ${self}`);
  mkdirSync(o.binDir, { recursive: true, mode: 0o755 });
  const main = join(o.binDir, 'cnm');
  if (o.link) {
    placeAtomically(main, (tmp) => symlinkSync(self, tmp));
  } else if (!existsSync(main) || statSync(main).ino !== statSync(self).ino) {
    placeAtomically(main, (tmp) => copyFileSync(self, tmp));
  }
  done.push(main);
  const names: string[] = [...PLUGIN_NAMES];
  if (!existsSync(join(o.binDir, LOOPBACK))) names.push(LOOPBACK);
  else done.push(`${join(o.binDir, LOOPBACK)} kept (the bin dir has one)`);
  for (const name of names) {
    const dest = join(o.binDir, name);
    placeAtomically(dest, (tmp) => {
      try {
        linkSync(main, tmp);
      } catch {
        copyFileSync(main, tmp);
      }
    });
    done.push(dest);
  }
  if (o.network) done.push(writeConflist(o.confDir, o.network, o.force));
  return done;
}

function writeConflist(confDir: string, n: NonNullable<InstallOptions['network']>, force: boolean): string {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(n.name)) fail(`network name ${JSON.stringify(n.name)} is invalid`);
  if (!['bridge', 'macvlan', 'ipvlan', 'null', 'host', 'overlay'].includes(n.driver)) fail(`--driver ${n.driver} is not one of bridge, macvlan, ipvlan, null, host, overlay`);
  if (n.cniVersion && !isSupportedVersion(n.cniVersion)) fail(`--cni-version ${n.cniVersion} is not one of ${SUPPORTED_VERSIONS.join(', ')}`);
  const file = join(confDir, `10-${n.name}.conflist`);
  const text = JSON.stringify(conflistFor(n), null, 2) + '\n';
  if (existsSync(file) && readFileSync(file, 'utf8') !== text && !force) {
    fail(`${file} exists with other content`, 'it may be an operator\'s: pass --force to replace it');
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
  const tmp = `${file}.cnm-install-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, file);
  return file;
}
