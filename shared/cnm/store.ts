import { closeSync, linkSync, mkdirSync, openSync, readdirSync, readFileIfExists, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync, writeSync } from '../kernel/fs.ts';
import { CniError, ErrorCode } from '../cni/errors.ts';
import { sleepSync } from '../kernel/sleep.ts';

/** The operator's store; a config's `dataDir` replaces it. */
export const DEFAULT_DATA_DIR = '/var/lib/cni/cnm';

function storeError(path: string, err: unknown): CniError {
  return new CniError(ErrorCode.StoreFailure, `state store ${path}: ${(err as Error).message}`, 'check the data dir exists and is writable by root');
}

/** The directory part of a path, as node:path's dirname gives it (store paths never end in '/'). */
function dirname(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '.' : slash === 0 ? '/' : path.slice(0, slash);
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Directories this process made or found (a handful: a list, not a Set, spares a plugin the Set's first use). */
const ensured: string[] = [];

export function ensureDir(path: string): void {
  if (ensured.includes(path)) return;
  try {
    mkdirSync(path, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw storeError(path, err);
  }
  ensured.push(path);
}

/**
 * Does a write whose directory may not exist yet: the directory is made when the write finds it missing, not
 * asked for before every write (a mkdir apiece, measured ~20 µs each).
 */
function inDir<T>(dir: string, write: () => T): T {
  try {
    return write();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    // Made again even when this process made it before: a daemon outlives a removed network's directories.
    const known = ensured.indexOf(dir);
    if (known >= 0) ensured.splice(known, 1);
    ensureDir(dir);
    return write();
  }
}

let tmpSeq = 0;

/**
 * Writers stage files in the directory's `.tmp/`, named after their pid, so that what a killed writer leaves
 * is found by sweepTemps without listing the (possibly large) directory itself.
 */
function stage(path: string, content: string): string {
  const dir = `${dirname(path)}/.tmp`;
  const tmp = `${dir}/${basename(path)}.${process.pid}.${tmpSeq++}`;
  const fd = inDir(dir, () => openSync(tmp, 'wx', 0o600));
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  return tmp;
}

/** Writes JSON so a reader sees the old record or the new one, never half of one. */
export function writeJsonAtomic(path: string, value: unknown): void {
  let tmp = '';
  try {
    tmp = stage(path, JSON.stringify(value));
    renameSync(tmp, path);
  } catch (err) {
    if (tmp) rmSync(tmp, { force: true });
    throw storeError(path, err);
  }
}

/**
 * Overwrites a small file in place: cheaper than staging (no new inode), for files whose readers survive a
 * torn write (a hint, or a record whose unreadable form means "look harder").
 */
export function overwrite(path: string, content: string): void {
  try {
    inDir(dirname(path), () => writeFileSync(path, content, { mode: 0o600 }));
  } catch (err) {
    throw storeError(path, err);
  }
}

/** The text of a file, or undefined when it does not exist. */
export function readText(path: string): string | undefined {
  try {
    return readFileIfExists(path);
  } catch (err) {
    throw storeError(path, err);
  }
}

/** Removes staged files of writers that died (SIGKILL between staging and rename). */
export function sweepTemps(dir: string): void {
  for (const name of listDir(`${dir}/.tmp`)) {
    const pid = Number(name.split('.').at(-2));
    if (!Number.isInteger(pid) || !pidAlive(pid)) removeFile(`${dir}/.tmp/${name}`);
  }
}

export function readJson<T>(path: string): T | undefined {
  const text = readText(path);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw storeError(path, err);
  }
}

export function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw storeError(path, err);
  }
}

/** Names in a directory (not the staging dir); none when it does not exist. */
export function listDir(path: string): string[] {
  try {
    const names = readdirSync(path);
    const staging = names.indexOf('.tmp');
    if (staging >= 0) names.splice(staging, 1);
    return names;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw storeError(path, err);
  }
}

/**
 * Creates a file, with its content, only if it does not exist yet (a lock, a pid file): staged and hard-linked into
 * place, so the name never exists without its content.
 */
export function createExclusive(path: string, content: string): boolean {
  let tmp: string;
  try {
    tmp = stage(path, content);
  } catch (err) {
    throw storeError(path, err);
  }
  try {
    return linkExclusive(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/**
 * Creates a file with its content only if it does not exist yet, in place: for a file whose name being taken is
 * what counts and whose readers accept it empty (a writer killed before it wrote). Cheaper than createExclusive
 * by a staged file's link and unlink.
 */
export function createInPlace(path: string, content: string): boolean {
  let fd: number;
  try {
    fd = inDir(dirname(path), () => openSync(path, 'wx', 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw storeError(path, err);
  }
  try {
    writeSync(fd, content);
  } catch (err) {
    removeFile(path);
    throw storeError(path, err);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** Gives a file a second name, only if that name is free: false when it is taken. */
export function linkExclusive(existing: string, created: string): boolean {
  try {
    linkSync(existing, created);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw storeError(created, err);
  }
}

/** Whether a process is alive (EPERM: alive, someone else's). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Holds an exclusive lock file while fn runs. A lock whose holder died is taken over,
 * so a killed invocation never wedges the network.
 */
export function withLock<T>(path: string, fn: () => T, timeoutMs = 30_000): T {
  const deadline = Date.now() + timeoutMs;
  for (let wait = 1; !createExclusive(path, String(process.pid)); wait = Math.min(wait * 2, 20)) {
    const holder = Number(readFileSafe(path));
    if (Number.isInteger(holder) && holder > 0 && !pidAlive(holder)) {
      removeFile(path);
      continue;
    }
    if (Date.now() > deadline) {
      throw new CniError(ErrorCode.TryAgainLater, `lock ${path} is held by pid ${holder}`, 'another invocation is still working on this network; try again');
    }
    sleepSync(wait);
  }
  try {
    return fn();
  } finally {
    removeFile(path);
  }
}

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
