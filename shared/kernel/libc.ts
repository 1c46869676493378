// libc through Bun's FFI, opened once for every in-process caller: netlink sockets, the remote driver's stream
// socket and the file calls of shared/kernel/fs.ts. One dlopen of every symbol costs ~0.2 ms; three would cost
// three times that. Null off Bun (the SEA build), where callers use Node's own modules.

type Pointer = unknown;
type Size = number | bigint;

export interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  connect(fd: number, addr: Pointer, len: number): number;
  setsockopt(fd: number, level: number, name: number, value: Pointer, len: number): number;
  send(fd: number, buf: Pointer, len: number, flags: number): Size;
  recv(fd: number, buf: Pointer, len: number, flags: number): Size;
  setns(fd: number, nstype: number): number;
  open(path: Pointer, flags: number, mode: number): number;
  close(fd: number): number;
  read(fd: number, buf: Pointer, len: number): Size;
  write(fd: number, buf: Pointer, len: number): Size;
  ftruncate(fd: number, len: number): number;
  getdents64(fd: number, buf: Pointer, len: number): Size;
  mkdir(path: Pointer, mode: number): number;
  rmdir(path: Pointer): number;
  unlink(path: Pointer): number;
  link(from: Pointer, to: Pointer): number;
  rename(from: Pointer, to: Pointer): number;
  access(path: Pointer, mode: number): number;
  readlink(path: Pointer, buf: Pointer, len: number): Size;
  statx(dirfd: number, path: Pointer, flags: number, mask: number, buf: Pointer): number;
  getrandom(buf: Pointer, len: number, flags: number): Size;
  __errno_location(): Pointer;
}

interface BunFfi {
  CString: new (p: Pointer, byteOffset: number, byteLength: number) => string;
  dlopen(lib: string, symbols: Record<string, { args: string[]; returns: string }>): { symbols: Libc };
  ptr(buf: Uint8Array, byteOffset?: number): Pointer;
  read: { i32(p: Pointer, offset?: number): number };
}

export interface LibcHandle {
  libc: Libc;
  ptr: BunFfi['ptr'];
  /** The calling thread's errno, read right after a call that failed. */
  errno(): number;
}

const i32 = 'i32';
const SYMBOLS = {
  socket: { args: [i32, i32, i32], returns: i32 },
  connect: { args: [i32, 'ptr', 'u32'], returns: i32 },
  setsockopt: { args: [i32, i32, i32, 'ptr', 'u32'], returns: i32 },
  send: { args: [i32, 'ptr', 'u64', i32], returns: 'i64' },
  recv: { args: [i32, 'ptr', 'u64', i32], returns: 'i64' },
  setns: { args: [i32, i32], returns: i32 },
  open: { args: ['ptr', i32, 'u32'], returns: i32 },
  close: { args: [i32], returns: i32 },
  read: { args: [i32, 'ptr', 'u64'], returns: 'i64' },
  write: { args: [i32, 'ptr', 'u64'], returns: 'i64' },
  ftruncate: { args: [i32, 'i64'], returns: i32 },
  getdents64: { args: [i32, 'ptr', 'u64'], returns: 'i64' },
  mkdir: { args: ['ptr', 'u32'], returns: i32 },
  rmdir: { args: ['ptr'], returns: i32 },
  unlink: { args: ['ptr'], returns: i32 },
  link: { args: ['ptr', 'ptr'], returns: i32 },
  rename: { args: ['ptr', 'ptr'], returns: i32 },
  access: { args: ['ptr', i32], returns: i32 },
  readlink: { args: ['ptr', 'ptr', 'u64'], returns: 'i64' },
  statx: { args: [i32, 'ptr', i32, 'u32', 'ptr'], returns: i32 },
  getrandom: { args: ['ptr', 'u64', 'u32'], returns: 'i64' },
  __errno_location: { args: [], returns: 'ptr' },
};

let handle: LibcHandle | null | undefined;

// Bun.FFI is the native object the `bun:ffi` module wraps; evaluating that wrapper costs ~0.4 ms of a plugin's
// start, so the native object is taken when it is there.
function bunFfi(): BunFfi {
  return ((globalThis as { Bun?: { FFI?: BunFfi } }).Bun?.FFI ?? require('bun:ffi')) as BunFfi;
}

/** libc, or null when this runtime is not Bun (or CNM_FFI=0 asks for Node's modules, to compare the two). */
export function libc(): LibcHandle | null {
  if (handle !== undefined) return handle;
  handle = null;
  if (typeof (globalThis as { Bun?: unknown }).Bun === 'undefined' || process.env.CNM_FFI === '0') return handle;
  try {
    const ffi = bunFfi();
    const { symbols } = ffi.dlopen('libc.so.6', SYMBOLS);
    const location = symbols.__errno_location();
    handle = { libc: symbols, ptr: ffi.ptr, errno: () => ffi.read.i32(location) };
  } catch {
    handle = null;
  }
  return handle;
}

/**
 * Names and texts of the errnos a plugin meets, as Node and strerror(3) give them. A switch, not a table: a
 * table of small arrays, made at module load, cost every start 2 of JavaScriptCore's heap blocks, which decide
 * whether its warm-up thread starts (README, Benchmark).
 */
function errnoEntry(errno: number): [string, string] | undefined {
  switch (errno) {
    case 1: return ['EPERM', 'operation not permitted'];
    case 2: return ['ENOENT', 'no such file or directory'];
    case 4: return ['EINTR', 'interrupted system call'];
    case 5: return ['EIO', 'i/o error'];
    case 9: return ['EBADF', 'bad file descriptor'];
    case 11: return ['EAGAIN', 'resource temporarily unavailable'];
    case 12: return ['ENOMEM', 'not enough memory'];
    case 13: return ['EACCES', 'permission denied'];
    case 16: return ['EBUSY', 'device or resource busy'];
    case 17: return ['EEXIST', 'file already exists'];
    case 18: return ['EXDEV', 'cross-device link not permitted'];
    case 19: return ['ENODEV', 'no such device'];
    case 20: return ['ENOTDIR', 'not a directory'];
    case 21: return ['EISDIR', 'illegal operation on a directory'];
    case 22: return ['EINVAL', 'invalid argument'];
    case 24: return ['EMFILE', 'too many open files'];
    case 28: return ['ENOSPC', 'no space left on device'];
    case 30: return ['EROFS', 'read-only file system'];
    case 34: return ['ERANGE', 'numerical result out of range'];
    case 36: return ['ENAMETOOLONG', 'name too long'];
    case 39: return ['ENOTEMPTY', 'directory not empty'];
    case 40: return ['ELOOP', 'too many symbolic links encountered'];
    case 95: return ['EOPNOTSUPP', 'operation not supported'];
    case 99: return ['EADDRNOTAVAIL', 'cannot assign requested address'];
    case 101: return ['ENETUNREACH', 'network is unreachable'];
    case 122: return ['EDQUOT', 'disk quota exceeded'];
    default: return undefined;
  }
}

export function errnoName(errno: number): string {
  return errnoEntry(errno)?.[0] ?? `E${errno}`;
}

export function errnoText(errno: number): string {
  return errnoEntry(errno)?.[1] ?? `errno ${errno}`;
}

// UTF-8 through TextEncoder, and back through the FFI's CString (TextDecoder where there is no FFI): Bun sets up
// Buffer on its first use (~0.2 ms of a plugin's start), and TextDecoder costs ~40-90 µs on its first (measured).
let encoder: TextEncoder | undefined;
let decoder: TextDecoder | undefined;

export function utf8(s: string): Uint8Array {
  return (encoder ??= new TextEncoder()).encode(s);
}

/** UTF-8 bytes as text, malformed sequences as U+FFFD, as TextDecoder gives them. */
export function fromUtf8(bytes: Uint8Array): string {
  if (bytes.length === 0) return '';
  if (libc()) {
    const ffi = bunFfi();
    return String(new ffi.CString(ffi.ptr(bytes), 0, bytes.length));
  }
  return (decoder ??= new TextDecoder()).decode(bytes);
}

/** The two reused buffers cString fills (a call with two paths takes one each). */
const pathBuffers: Uint8Array[] = [];

/**
 * A NUL-terminated UTF-8 copy of a string, for a char* argument, in one of two reused buffers: valid until the
 * next cString for the same slot.
 */
export function cString(s: string, slot: 0 | 1 = 0): Uint8Array {
  const need = s.length * 3 + 1;
  let b = pathBuffers[slot];
  if (b === undefined || b.length < need) b = pathBuffers[slot] = new Uint8Array(need > 4096 ? need : 4096);
  b[utf8Into(s, b, 0)] = 0;
  return b;
}

/** Writes a string's UTF-8 into `dest` at `offset`; returns how many bytes it wrote. */
export function utf8Into(s: string, dest: Uint8Array, offset: number): number {
  return (encoder ??= new TextEncoder()).encodeInto(s, offset === 0 ? dest : dest.subarray(offset)).written;
}
