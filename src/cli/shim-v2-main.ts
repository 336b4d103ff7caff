import { Logger } from '../util/logger.js';
import { messageOf } from '../util/errors.js';
import { parseShimArgs } from '../shim-v2/shim-args.js';

/**
 * containerd-shim-kata-ts-v2: the containerd shim v2 binary (runtime
 * io.containerd.kata-ts.v2). bin/kata-ts runs this when called by that name.
 * start prints the shim's address; delete prints a DeleteResponse; serve is
 * the daemon that start launches.
 */
export async function shimV2Main(argv: string[], selfCommand: string[]): Promise<void> {
  let args;
  try {
    args = parseShimArgs(argv);
  } catch (err) {
    process.stderr.write(`containerd-shim-kata-ts-v2: ${messageOf(err)}\n`);
    process.exitCode = 1;
    return;
  }
  // stderr is containerd's: for start and delete it reads it on failure; for the daemon it is the bundle's log FIFO.
  const logger = new Logger({ format: 'json', debug: args.debug, sink: (line) => void process.stderr.write(line) }, { id: args.id, namespace: args.namespace });
  try {
    if (args.action === 'start') {
      const { startShim } = await import('../shim-v2/shim-start.js');
      process.stdout.write(await startShim(args, selfCommand));
    } else if (args.action === 'delete') {
      const { deleteAfterDeadShim } = await import('../shim-v2/shim-delete.js');
      process.stdout.write(await deleteAfterDeadShim(args, logger));
    } else {
      const { serveShim } = await import('../shim-v2/shim-daemon.js');
      await serveShim(args, logger);
    }
  } catch (err) {
    if (args.action === 'serve') {
      logger.error(messageOf(err));
      process.exit(1);
    }
    process.stderr.write(`containerd-shim-kata-ts-v2: ${messageOf(err)}\n`);
    process.exitCode = 1;
  }
}
