// The one compiled executable: every plugin is a hard link to it, and it runs the plugin named by the
// name it was started under. Each plugin module is required only when chosen, so an invocation evaluates
// just its own code.

/** Executable names, as installed in CNI_PATH, and the module each runs (plugins/names.ts lists them). */
const EXECUTABLES: Record<string, () => unknown> = {
  cnm: () => require('./cnm/main.ts'),
  'cnm-bridge': () => require('./bridge/main.ts'),
  'cnm-host': () => require('./host/main.ts'),
  'cnm-host-local': () => require('./host-local/main.ts'),
  'cnm-ipvlan': () => require('./ipvlan/main.ts'),
  'cnm-macvlan': () => require('./macvlan/main.ts'),
  'cnm-null': () => require('./null/main.ts'),
  'cnm-overlay': () => require('./overlay/main.ts'),
  'cnm-remote': () => require('./remote/main.ts'),
  'cnm-remote-ipam': () => require('./remote-ipam/main.ts'),
  loopback: () => require('./loopback/main.ts'),
};

/** Bun's JIT tier-up scale (build/build.mjs compiles the executable with a high one: see there). */
interface BunUnsafe {
  unsafe?: { setJITPolicy?(scale: number): void };
}

const invoked = (process.argv0 || process.execPath).split('/').pop()!;
const run = EXECUTABLES[invoked];
if (invoked === 'cnm') {
  // The operator's CLI may run long (a daemon, a big listing): the normal JIT policy, as Bun asks of an
  // executable compiled with a raised one once past its start-up.
  (globalThis as { Bun?: BunUnsafe }).Bun?.unsafe?.setJITPolicy?.(1);
  run!();
} else if (run) {
  run();
  // A plugin that answered synchronously has set its exit code: exit without draining an event loop it never
  // used. One that still awaits something (no code yet) runs on as usual.
  if (process.exitCode !== undefined) process.exit();
} else {
  // node:fs only on this path: the FFI-backed shared/kernel/fs.ts would be a second copy of the one the plugin
  // modules carry, evaluated on every start (ADD p50 -0.34 ms without it, measured).
  (require('node:fs') as typeof import('node:fs')).writeSync(2, `cnm-cni: started as "${invoked}", which is none of ${Object.keys(EXECUTABLES).join(', ')}\n`);
  process.exitCode = 2;
}
