// A synchronous pause: a plugin never runs an event loop, so waiting for the kernel or a lock blocks the thread.
const cell = new Int32Array(new SharedArrayBuffer(4));

/** Blocks for `ms` milliseconds (fractions allowed: 0.1 waits 100 µs). */
export function sleepSync(ms: number): void {
  Atomics.wait(cell, 0, 0, ms);
}
