// Bun's FFI for the modules that call libc in-process (netlink, the remote driver's socket).
//
// Bun.FFI is the native object the `bun:ffi` module wraps; evaluating that wrapper costs ~0.4 ms of a plugin's
// start, so the native object is taken when it is there, the module otherwise. Each caller types the members it
// uses.
export function bunFfi<T>(): T {
  return ((globalThis as { Bun?: { FFI?: T } }).Bun?.FFI ?? require('bun:ffi')) as T;
}
