import { writeSync } from '../kernel/fs.ts';

/**
 * Per-phase timing of one invocation, on when CNM_TIMING=1: each lap charges the time since the previous
 * lap to a phase, and report() writes one line to stderr. Off, a lap costs one comparison.
 */
const on = process.env.CNM_TIMING === '1';
const phases: Record<string, number> = {};
let last = 0;

export function startTiming(): void {
  if (!on) return;
  // performance.now() counts from process start: what came before this call is start-up.
  last = performance.now();
  phases.startup = last;
}

export function lap(phase: string): void {
  if (!on) return;
  const now = performance.now();
  phases[phase] = (phases[phase] ?? 0) + now - last;
  last = now;
}

export function reportTiming(command: string): void {
  if (!on) return;
  const total = performance.now();
  // A loop, not map: the benchmark times invocations with this on, and map's first call costs a compile.
  let parts = '';
  for (const k in phases) parts += `${parts ? ' ' : ''}${k}=${phases[k]!.toFixed(2)}`;
  try {
    writeSync(2, `cnm-timing ${command} total=${total.toFixed(2)} ${parts}\n`);
  } catch {
    // stderr closed
  }
}
