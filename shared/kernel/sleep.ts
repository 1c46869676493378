// A synchronous pause: a plugin never runs an event loop, so waiting for the kernel or a lock blocks the thread.
// Made at the first pause, not when the module loads: most invocations never wait.
let cell: Int32Array | undefined;

/** Blocks for `ms` milliseconds (fractions allowed: 0.1 waits 100 µs). */
export function sleepSync(ms: number): void {
  Atomics.wait((cell ??= new Int32Array(new SharedArrayBuffer(4))), 0, 0, ms);
}
