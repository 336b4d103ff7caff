/** What containerd passes a shim binary (Go flag syntax: -name value, or --name value). */
export interface ShimArgs {
  namespace: string;
  address: string;
  publishBinary: string;
  id: string;
  bundle?: string;
  debug: boolean;
  /** Our own: the daemon's socket, chosen by `start`. */
  socket?: string;
  action: 'start' | 'delete' | 'serve';
}

const valued: Record<string, keyof ShimArgs> = {
  namespace: 'namespace', address: 'address', 'publish-binary': 'publishBinary', id: 'id', bundle: 'bundle', socket: 'socket',
};

export function parseShimArgs(argv: string[]): ShimArgs {
  const args: Partial<ShimArgs> = { debug: false };
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i] ?? '';
    if (!raw.startsWith('-')) {
      if (raw !== 'start' && raw !== 'delete' && raw !== 'serve') throw new Error(`unknown action ${JSON.stringify(raw)} (start, delete)`);
      args.action = raw;
      continue;
    }
    const [name = '', inline] = raw.replace(/^--?/, '').split(/=(.*)/s, 2);
    if (name === 'debug') {
      args.debug = inline === undefined || inline === 'true';
      continue;
    }
    const key = valued[name];
    if (!key) throw new Error(`unknown flag -${name}`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`flag -${name} needs a value`);
    (args as Record<string, unknown>)[key] = value;
  }
  if (!args.namespace) throw new Error('-namespace is required');
  if (!args.id) throw new Error('-id is required');
  if (!args.action) throw new Error('no action (start or delete)');
  return { address: '', publishBinary: '', ...args } as ShimArgs;
}

/** Where the shim serving a sandbox listens: short (unix socket paths are limited to 108 bytes) and distinct per containerd, namespace and sandbox. */
export const shimSocketDir = '/run/kata-ts-shim/s';

/** The state root of the shim's containers: one per containerd namespace (kata-ts --root). */
export function shimStateRoot(namespace: string): string {
  return `/run/kata-ts-shim/${namespace}`;
}
