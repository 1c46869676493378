/** The plugin names the one executable answers to (all installed as links to it), besides `cnm` itself. */
export const PLUGIN_NAMES = ['cnm-bridge', 'cnm-host', 'cnm-host-local', 'cnm-ipvlan', 'cnm-macvlan', 'cnm-null', 'cnm-overlay', 'cnm-remote', 'cnm-remote-ipam'] as const;

/**
 * containerd 1.6's CRI runs a plugin called `loopback` for every pod; cnm-cni's (cnm-null's behaviour, with no
 * store) is installed only where the bin dir has none.
 */
export const LOOPBACK = 'loopback';
