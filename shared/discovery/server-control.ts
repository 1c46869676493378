// The node's DNS server as the plugins see it: a PID file (one server per run dir), the list of stores it
// serves, and a detached start when an ADD finds none running. Nothing here loads the server's code.
import { closeSync, existsSync, openSync, readFileSync } from '../kernel/fs.ts';
import type { Log } from '../cni/log.ts';
import { shortHash } from '../cnm/names.ts';
import { createExclusive, ensureDir, listDir, overwrite, pidAlive, readText, removeFile } from '../cnm/store.ts';
import { spawnSelf } from '../kernel/spawn.ts';

export const pidFile = (runDir: string) => `${runDir}/pid`;
export const storesDir = (runDir: string) => `${runDir}/stores`;
export const serverLog = (runDir: string) => `${runDir}/server.log`;
const storeEntry = (runDir: string, dataDir: string) => `${storesDir(runDir)}/${shortHash(dataDir)}`;

/** The PID of the run dir's server when one is running. */
export function runningServer(runDir: string): number | undefined {
  const pid = Number(readText(pidFile(runDir)));
  return Number.isInteger(pid) && pid > 0 && pidAlive(pid) ? pid : undefined;
}

/** The data dirs the server serves. */
export function registeredStores(runDir: string): string[] {
  return listDir(storesDir(runDir)).map((n) => readText(`${storesDir(runDir)}/${n}`)).filter((d): d is string => !!d);
}

export function registerStore(runDir: string, dataDir: string): void {
  ensureDir(storesDir(runDir));
  overwrite(storeEntry(runDir, dataDir), dataDir);
}

export function unregisterStore(runDir: string, dataDir: string): void {
  removeFile(storeEntry(runDir, dataDir));
}

/**
 * Called by every ADD on a network with service discovery, after its endpoint record is ready: the store
 * is registered and a server started unless one runs. The order (record, registration, PID check) is what
 * a server that is just stopping checks against, so a name is never left without a server.
 */
export function ensureDnsServer(runDir: string, dataDir: string, log: Log): void {
  const entry = storeEntry(runDir, dataDir);
  if (!existsSync(entry)) registerStore(runDir, dataDir);
  if (runningServer(runDir) !== undefined) return;
  registerStore(runDir, dataDir);
  const fd = openSync(serverLog(runDir), 'a', 0o600);
  try {
    spawnSelf('cnm', ['dns', '--run-dir', runDir], fd);
  } finally {
    closeSync(fd);
  }
  log.debug(`started the DNS server of ${runDir}`);
}

/** Takes the run dir's PID file for this process; false when another live server holds it. */
export function claimPidFile(runDir: string): boolean {
  ensureDir(runDir);
  for (let i = 0; i < 3; i++) {
    if (createExclusive(pidFile(runDir), String(process.pid))) return true;
    const holder = runningServer(runDir);
    if (holder !== undefined) return holder === process.pid;
    removeFile(pidFile(runDir));
  }
  return false;
}

/** Gives the PID file up, if it is still this process's. */
export function releasePidFile(runDir: string): void {
  try {
    if (Number(readFileSync(pidFile(runDir), 'utf8')) === process.pid) removeFile(pidFile(runDir));
  } catch {
    // already gone
  }
}
