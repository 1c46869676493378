import { existsSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Directories a runtime makes on the machine whatever its config says (libcni's /var/lib/cni cache dir, the
 * shim socket dir, cgroup parents in every hierarchy). A suite notes which exist before it starts and removes,
 * afterwards, those it made, if they are empty: never one that was there before.
 */
export function runtimeDirs(): string[] {
  const cgroups = existsSync('/sys/fs/cgroup') ? readdirSync('/sys/fs/cgroup').map((h) => `/sys/fs/cgroup/${h}/k8s.io`) : [];
  return ['/var/lib/cni/results', '/var/lib/cni', '/run/containerd/s', '/run/containerd/runc', '/run/containerd', ...cgroups];
}

export function existingDirs(paths: string[]): Set<string> {
  return new Set(paths.filter((p) => existsSync(p)));
}

/** Removes empty dirs, children first; returns what is still there (not empty: a leftover to report). */
function removeEmptyTree(dir: string): string[] {
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) return [dir];
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const left = names.flatMap((n) => {
    const p = join(dir, n);
    try {
      return statSync(p).isDirectory() ? removeEmptyTree(p) : dir.startsWith('/sys/fs/cgroup/') ? [] : [p];
    } catch {
      return [];
    }
  });
  if (left.length === 0) {
    try {
      rmdirSync(dir);
    } catch {
      return [dir];
    }
  }
  return left;
}

export function removeNewDirs(paths: string[], before: Set<string>): string[] {
  return paths.filter((p) => !before.has(p) && existsSync(p)).flatMap(removeEmptyTree);
}
