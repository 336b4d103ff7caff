import type { Command } from 'commander';
import { KataError } from '../../util/errors.js';

/** Why a VM's container cannot be checkpointed: what CRIU would dump lives in the guest. */
const why = "a container's processes and memory live in its VM, where the host's CRIU cannot reach them";

/**
 * runc's checkpoint and restore, refused. Callers probe support with
 * `<runtime> checkpoint --help` (podman: a zero exit means "supported"), so
 * --help is refused as well: every form exits 1 with one line.
 */
export function registerCheckpoint(program: Command): void {
  for (const name of ['checkpoint', 'restore'] as const) {
    program
      .command(name)
      .description(`not supported: ${why}`)
      .helpOption(false)
      .allowUnknownOption()
      .allowExcessArguments()
      .argument('[args...]')
      .action(() => {
        throw new KataError('UNSUPPORTED', `${name} is not supported by kata-ts: ${why}`);
      });
  }
}
