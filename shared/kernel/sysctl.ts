import { writeFileSync } from './fs.ts';
import { inNetns } from './netns.ts';
import { runOk } from './spawn.ts';

/** Sets sysctls (dotted keys): in the node's namespace by writing /proc/sys, in a pod's through one `sysctl` run inside it. */
export function setSysctls(values: Record<string, string>, where?: string): void {
  const keys = Object.keys(values);
  if (keys.length === 0) return;
  if (!where) {
    for (const k of keys) writeFileSync(`/proc/sys/${k.replaceAll('.', '/')}`, values[k]!);
    return;
  }
  const [tool, args] = inNetns(where, 'sysctl', ['-q', '-w', ...keys.map((k) => `${k}=${values[k]}`)]);
  runOk(tool, args);
}
