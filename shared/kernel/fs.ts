// The file calls of a plugin's hot path (the store, IPAM reservations, sysfs and procfs reads, stdin and
// stdout), with node:fs's names and behaviour for the forms used here. Under Bun they go straight to libc:
// evaluating node:fs costs a plugin 1.1-1.4 ms of start-up, more than all its file calls together. Elsewhere (the
// SEA build, unit tests under Node) they are node:fs's own.
//
// Errors carry node:fs's `code` ('ENOENT', 'EEXIST', ...) and message form ("ENOENT: no such file or directory,
// open '/x'"), so callers test one thing whichever runtime they run on.
import { u16le, u32le } from './bytes.ts';
import type * as NodeFs from 'node:fs';
import { cString, errnoName, errnoText, fromUtf8, libc, utf8, type LibcHandle } from './libc.ts';
import { sleepSync } from './sleep.ts';

export interface FileStat {
  dev: number;
  ino: number;
  /** How many names the file has (hard links). */
  nlink: number;
  mode: number;
  size: number;
  isDirectory(): boolean;
  isFile(): boolean;
  isSocket(): boolean;
}

export type OpenFlags = 'r' | 'wx' | 'a';

let nodeFs: typeof NodeFs | undefined;
function node(): typeof NodeFs {
  return (nodeFs ??= require('node:fs') as typeof NodeFs);
}

const O_WRONLY = 0o1;
const O_CREAT = 0o100;
const O_EXCL = 0o200;
const O_APPEND = 0o2000;
const O_DIRECTORY = 0o200000;
const O_CLOEXEC = 0o2000000;
const FLAGS: Record<OpenFlags, number> = {
  r: O_CLOEXEC,
  wx: O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
  a: O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
};
const EINTR = 4;
const EAGAIN = 11;
const ENOENT = 2;
const EEXIST = 17;
const EISDIR = 21;
const EINVAL = 22;
const AT_FDCWD = -100;
const STATX_BASIC_STATS = 0x7ff;
const S_IFMT = 0o170000;

class FsError extends Error {
  readonly errno: number;
  constructor(
    errnum: number,
    readonly syscall: string,
    readonly path?: string,
  ) {
    super(`${errnoName(errnum)}: ${errnoText(errnum)}, ${syscall}${path === undefined ? '' : ` '${path}'`}`);
    this.errno = -errnum;
  }
  get code(): string {
    return errnoName(-this.errno);
  }
}

/** A libc call's answer; a negative one throws its errno as an FsError. */
function check(c: LibcHandle, result: number | bigint, syscall: string, path?: string): number {
  const n = Number(result);
  if (n < 0) throw new FsError(c.errno(), syscall, path);
  return n;
}

/** Like check, calling again while the call is interrupted (EINTR). */
function retrying(c: LibcHandle, call: () => number | bigint, syscall: string, path?: string): number {
  for (;;) {
    const n = Number(call());
    if (n >= 0) return n;
    const e = c.errno();
    if (e !== EINTR) throw new FsError(e, syscall, path);
  }
}

/** open(2), called again while interrupted; with `missingOk`, -1 for a path that does not exist instead of an error. */
function ffiOpen(c: LibcHandle, path: string, flags: number, mode: number, missingOk = false): number {
  const p = cString(path);
  for (;;) {
    const fd = c.libc.open(c.ptr(p), flags, mode);
    if (fd >= 0) return fd;
    const e = c.errno();
    if (e === ENOENT && missingOk) return -1;
    if (e !== EINTR) throw new FsError(e, 'open', path);
  }
}

/** One buffer for every read: a fresh 4 KiB + 8 KiB pair per file cost ~25 µs an ADD's dozen reads (measured). */
const READ_BUFFER_SIZE = 16384;
let readBuffer = new Uint8Array(READ_BUFFER_SIZE);

function readAll(c: LibcHandle, fd: number, what?: string): string {
  let total = 0;
  for (;;) {
    if (total === readBuffer.length) {
      const grown = new Uint8Array(readBuffer.length * 2);
      grown.set(readBuffer);
      readBuffer = grown;
    }
    const buf = readBuffer;
    const n = retrying(c, () => c.libc.read(fd, c.ptr(buf, total), buf.length - total), 'read', what);
    if (n === 0) break;
    total += n;
  }
  const text = fromUtf8(readBuffer.subarray(0, total));
  // A daemon that once read a large file does not keep its size for good.
  if (readBuffer.length > 4 * READ_BUFFER_SIZE) readBuffer = new Uint8Array(READ_BUFFER_SIZE);
  return text;
}

/**
 * Writes every byte. A descriptor its reader left non-blocking (a runtime's pipe) answers EAGAIN while the pipe is
 * full: waited out, 1 ms at a time, for up to 30 s.
 */
function writeAll(c: LibcHandle, fd: number, bytes: Uint8Array): number {
  const deadline = Date.now() + 30_000;
  for (let off = 0; off < bytes.length; ) {
    const rest = bytes.subarray(off);
    const n = Number(c.libc.write(fd, c.ptr(rest), rest.length));
    if (n >= 0) {
      off += n;
      continue;
    }
    const e = c.errno();
    if (e === EAGAIN && Date.now() < deadline) sleepSync(1);
    else if (e !== EINTR) throw new FsError(e, 'write');
  }
  return bytes.length;
}

function bytesOf(data: string | Uint8Array): Uint8Array {
  return typeof data === 'string' ? utf8(data) : data;
}

/** A whole file (or what a descriptor, such as stdin, gives until its end) as UTF-8 text. */
export function readFileSync(file: string | number, encoding: 'utf8'): string {
  const c = libc();
  if (!c) return node().readFileSync(file, encoding);
  if (typeof file === 'number') return readAll(c, file);
  return readPath(c, file, false)!;
}

/** A file's whole text; undefined when it does not exist and `missingOk`. */
function readPath(c: LibcHandle, path: string, missingOk: boolean): string | undefined {
  const fd = ffiOpen(c, path, FLAGS.r, 0, missingOk);
  if (fd < 0) return undefined;
  try {
    return readAll(c, fd, path);
  } finally {
    c.libc.close(fd);
  }
}

/**
 * A whole file as UTF-8 text, or undefined when it does not exist: for files whose absence is an answer (a record
 * not written yet), without the cost of making and catching an error (~50 µs each, measured).
 */
export function readFileIfExists(path: string): string | undefined {
  const c = libc();
  if (!c) {
    try {
      return node().readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }
  return readPath(c, path, true);
}

/** Writes all of the data to a descriptor; the byte count written. */
export function writeSync(fd: number, data: string | Uint8Array): number {
  const c = libc();
  if (!c) return node().writeSync(fd, bytesOf(data));
  return writeAll(c, fd, bytesOf(data));
}

export function openSync(path: string, flags: OpenFlags, mode = 0o666): number {
  const c = libc();
  if (!c) return node().openSync(path, flags, mode);
  return ffiOpen(c, path, FLAGS[flags], mode);
}

export function closeSync(fd: number): void {
  const c = libc();
  if (!c) return node().closeSync(fd);
  check(c, c.libc.close(fd), 'close');
}

/**
 * Replaces a file's content. Written over, then cut to length, rather than opened with O_TRUNC: ext4 flushes a
 * file truncated to nothing and written again when it is closed (its auto_da_alloc), ~0.15 ms a write.
 */
export function writeFileSync(path: string, data: string | Uint8Array, options: { mode?: number } = {}): void {
  const c = libc();
  if (!c) return node().writeFileSync(path, data, options);
  const bytes = bytesOf(data);
  const fd = ffiOpen(c, path, O_WRONLY | O_CREAT | O_CLOEXEC, options.mode ?? 0o666);
  try {
    writeAll(c, fd, bytes);
    // procfs and sysfs files have no length to cut (EINVAL)
    if (c.libc.ftruncate(fd, bytes.length) !== 0 && c.errno() !== EINVAL) throw new FsError(c.errno(), 'ftruncate', path);
  } finally {
    c.libc.close(fd);
  }
}

export function appendFileSync(path: string, data: string | Uint8Array, options: { mode?: number } = {}): void {
  const c = libc();
  if (!c) return node().appendFileSync(path, data, options);
  const fd = ffiOpen(c, path, FLAGS.a, options.mode ?? 0o666);
  try {
    writeAll(c, fd, bytesOf(data));
  } finally {
    c.libc.close(fd);
  }
}

function pathCall(name: 'unlink' | 'rmdir', path: string): void {
  const c = libc()!;
  const p = cString(path);
  check(c, c.libc[name](c.ptr(p)), name, path);
}

function twoPathCall(name: 'link' | 'rename', from: string, to: string): void {
  const c = libc()!;
  const a = cString(from);
  const b = cString(to, 1);
  check(c, c.libc[name](c.ptr(a), c.ptr(b)), name, from);
}

export function unlinkSync(path: string): void {
  if (!libc()) return node().unlinkSync(path);
  pathCall('unlink', path);
}

export function linkSync(existing: string, created: string): void {
  if (!libc()) return node().linkSync(existing, created);
  twoPathCall('link', existing, created);
}

export function renameSync(from: string, to: string): void {
  if (!libc()) return node().renameSync(from, to);
  twoPathCall('rename', from, to);
}

export function existsSync(path: string): boolean {
  const c = libc();
  if (!c) return node().existsSync(path);
  const p = cString(path);
  return c.libc.access(c.ptr(p), 0) === 0;
}

export function readlinkSync(path: string): string {
  const c = libc();
  if (!c) return node().readlinkSync(path, 'utf8');
  const p = cString(path);
  const buf = new Uint8Array(4096);
  const n = check(c, c.libc.readlink(c.ptr(p), c.ptr(buf), buf.length), 'readlink', path);
  return fromUtf8(buf.subarray(0, n));
}

/** Creates a directory; `recursive` creates its missing parents too and accepts one that exists. */
export function mkdirSync(path: string, options: { recursive?: boolean; mode?: number } = {}): void {
  const c = libc();
  if (!c) {
    node().mkdirSync(path, options);
    return;
  }
  const mode = options.mode ?? 0o777;
  const p = cString(path);
  if (c.libc.mkdir(c.ptr(p), mode) === 0) return;
  const e = c.errno();
  if (options.recursive && e === EEXIST) return;
  const parent = path.slice(0, path.lastIndexOf('/'));
  if (!options.recursive || e !== ENOENT || !parent) throw new FsError(e, 'mkdir', path);
  mkdirSync(parent, options);
  // The parent's calls reused the path buffer.
  if (c.libc.mkdir(c.ptr(cString(path)), mode) !== 0 && c.errno() !== EEXIST) throw new FsError(c.errno(), 'mkdir', path);
}

/** The names in a directory, without `.` and `..`, in the order the file system keeps them. */
export function readdirSync(path: string): string[] {
  const c = libc();
  if (!c) return node().readdirSync(path);
  const fd = ffiOpen(c, path, O_DIRECTORY | O_CLOEXEC, 0);
  const names: string[] = [];
  try {
    const buf = new Uint8Array(32768);
    for (;;) {
      const n = retrying(c, () => c.libc.getdents64(fd, c.ptr(buf), buf.length), 'scandir', path);
      if (n === 0) break;
      // struct linux_dirent64: d_ino u64, d_off s64, d_reclen u16, d_type u8, d_name NUL-terminated.
      for (let off = 0; off < n; off += u16le(buf, off + 16)) {
        const end = buf.indexOf(0, off + 19);
        const name = fromUtf8(buf.subarray(off + 19, end));
        if (name !== '.' && name !== '..') names.push(name);
      }
    }
  } finally {
    c.libc.close(fd);
  }
  return names;
}

/** Removes a file, or with `recursive` a directory and all in it; `force` ignores one that is not there. */
export function rmSync(path: string, options: { recursive?: boolean; force?: boolean } = {}): void {
  const c = libc();
  if (!c) return node().rmSync(path, options);
  const p = cString(path);
  if (c.libc.unlink(c.ptr(p)) === 0) return;
  const e = c.errno();
  if (e === ENOENT && options.force) return;
  if (e !== EISDIR || !options.recursive) throw new FsError(e, 'rm', path);
  for (const name of readdirSync(path)) rmSync(`${path}/${name}`, options);
  // The entries' calls reused the path buffer.
  if (c.libc.rmdir(c.ptr(cString(path))) !== 0 && !(c.errno() === ENOENT && options.force)) throw new FsError(c.errno(), 'rmdir', path);
}

/** Where statx answers, one for every call. */
const statxBuffer = new Uint8Array(256);
const u32At = (off: number) => u32le(statxBuffer, off);

/** stat(2) of a path, following symbolic links. */
export function statSync(path: string): FileStat {
  const c = libc();
  if (!c) return node().statSync(path);
  return statx(c, path, false)!;
}

/** stat(2) of a path, or undefined when it does not exist (no error made for the common miss). */
export function statIfExists(path: string): FileStat | undefined {
  const c = libc();
  if (!c) return node().statSync(path, { throwIfNoEntry: false });
  return statx(c, path, true);
}

function statx(c: LibcHandle, path: string, missingOk: boolean): FileStat | undefined {
  const p = cString(path);
  if (c.libc.statx(AT_FDCWD, c.ptr(p), 0, STATX_BASIC_STATS, c.ptr(statxBuffer)) !== 0) {
    const e = c.errno();
    if (e === ENOENT && missingOk) return undefined;
    throw new FsError(e, 'stat', path);
  }
  // struct statx: stx_nlink u32 at 16, stx_mode u16 at 28, stx_ino u64 at 32, stx_size u64 at 40,
  // stx_dev_major/minor u32 at 136/140.
  const mode = u16le(statxBuffer, 28);
  const major = u32At(136);
  const minor = u32At(140);
  const type = mode & S_IFMT;
  return {
    // glibc's makedev(), as Node reports st_dev
    dev: (major & 0xfff) * 0x100 + (minor & 0xff) + (minor >>> 8) * 0x100000 + (major >>> 12) * 0x100000000000,
    ino: u32At(32) + u32At(36) * 0x100000000,
    nlink: u32At(16),
    mode,
    size: u32At(40) + u32At(44) * 0x100000000,
    isDirectory: () => type === 0o040000,
    isFile: () => type === 0o100000,
    isSocket: () => type === 0o140000,
  };
}
