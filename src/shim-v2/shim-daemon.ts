import { rmSync } from 'node:fs';
import { loadRuntimeConfig } from '../config/load-config.js';
import { runPod } from '../pod/pod-process.js';
import { podSocketPath } from '../pod/pod-layout.js';
import type { PodStarter, RuntimeContext } from '../runtime/runtime-context.js';
import { StateStore } from '../store/state-store.js';
import { TtrpcServer } from '../ttrpc/ttrpc-server.js';
import { KataError, messageOf } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { identify } from '../util/process-identity.js';
import { unixSocketAnswers } from '../util/unix-socket.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { EventPublisher } from './event-publisher.js';
import { shimStateRoot, type ShimArgs } from './shim-args.js';
import { taskService } from './task-messages.js';
import { TaskService } from './task-service.js';

/**
 * The shim daemon: one per sandbox (pod). It serves containerd's Task API on
 * its socket and is the sandbox's pod process too (agent session, QMP, every
 * process's I/O), so a pod costs one long-lived host process besides QEMU.
 */
export async function serveShim(args: ShimArgs, logger: Logger): Promise<void> {
  if (!args.socket) throw new KataError('USAGE', 'serve needs -socket');
  const events = new EventPublisher(process.env.TTRPC_ADDRESS ?? '', args.namespace, logger);
  const startPod: PodStarter = async (vmDir, readyTimeoutMs) => {
    runPod({ vmDir, fresh: true, logger, readyTimeoutMs }).catch((err: unknown) => logger.error(`pod: ${messageOf(err)}`));
    const deadline = Date.now() + readyTimeoutMs;
    while (!(await unixSocketAnswers(podSocketPath(vmDir)))) {
      if (Date.now() > deadline) throw new KataError('TIMEOUT', `the agent did not answer within ${readyTimeoutMs} ms`);
      await sleep(25);
    }
    const self = await identify(process.pid);
    if (!self) throw new KataError('VM', 'cannot identify the shim process');
    return self;
  };
  const ctx: RuntimeContext = { store: new StateStore(shimStateRoot(args.namespace)), logger, log: { format: 'json', debug: args.debug }, startPod };
  const server = new TtrpcServer();
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    logger.info('shim: shutting down');
    // The socket is already gone (shutdown removed it). Events still queued get a bounded time to reach containerd.
    void (async () => {
      await Promise.race([events.flush(), sleep(2000)]);
      events.close();
      await Promise.race([server.close(), sleep(1000)]);
      process.exit(0);
    })();
  };
  const tasks = new TaskService({
    ctx,
    logger,
    events,
    loadConfig: async (configPath) => {
      const config = await loadRuntimeConfig({ explicitPath: configPath, envPath: process.env.KATA_CONF_FILE });
      for (const warning of config.warnings) logger.warn(warning);
      return config;
    },
    // The socket goes before the Shutdown reply does: containerd may kill the shim as soon as it
    // has the reply, and a socket left would outlive it. The exit waits until the reply is out.
    shutdown: () => {
      rmSync(args.socket!, { force: true });
      setTimeout(stop, 100);
    },
  });
  server.register(taskService, tasks.methods());
  await server.listen(args.socket);
  logger.info(`shim for sandbox ${args.id} serves ${args.socket}`);
}
