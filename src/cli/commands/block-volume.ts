import { Option, type Command } from 'commander';
import type { ListedVolume } from '../../runtime/block-volumes.js';
import { formatTable } from '../../util/text-table.js';
import { contextFor } from '../command-context.js';

function table(volumes: ListedVolume[]): string {
  const header = ['CONTAINER', 'DEVICE PATH', 'BLOCK VOLUME', 'GUEST ADDRESS', 'QEMU DEVICE'];
  return formatTable([header, ...volumes.map((v) => [v.containerId, v.devicePath, v.hostPath, v.guestAddress, v.attachment.deviceId])]);
}

/** ecr-runtime's block-volume command: hot-plug a host disk into a running container, and out again. */
export function registerBlockVolume(program: Command): void {
  const blockVolume = program.command('block-volume').description('hot-plug block volumes into running containers (ecr-runtime)');
  blockVolume
    .command('hot-plug')
    .description('attach a host block device or image file to a running container at --device-path')
    .requiredOption('--sandbox <id>', 'the sandbox (pod) id')
    .requiredOption('--container <id>', 'the container id')
    .requiredOption('--block-volume <path>', 'host block device (a loop device, say) or regular image file')
    .requiredOption('--device-path <path>', 'node to create in the container, under /dev')
    .action(async (flags: { sandbox: string; container: string; blockVolume: string; devicePath: string }, command: Command) => {
      const { hotPlugVolume } = await import('../../runtime/block-volumes.js');
      await hotPlugVolume(contextFor(command).runtime, { sandboxId: flags.sandbox, containerId: flags.container, hostPath: flags.blockVolume, devicePath: flags.devicePath });
    });
  blockVolume
    .command('hot-unplug')
    .description('remove a hot-plugged volume from a container and from the VM')
    .requiredOption('--sandbox <id>', 'the sandbox (pod) id')
    .requiredOption('--container <id>', 'the container id')
    .requiredOption('--device-path <path>', 'the node the volume was plugged at')
    .action(async (flags: { sandbox: string; container: string; devicePath: string }, command: Command) => {
      const { hotUnplugVolume } = await import('../../runtime/block-volumes.js');
      await hotUnplugVolume(contextFor(command).runtime, flags.sandbox, flags.container, flags.devicePath);
    });
  blockVolume
    .command('list')
    .description('list the hot-plugged volumes of a sandbox (or of one container)')
    .requiredOption('--sandbox <id>', 'the sandbox (pod) id')
    .option('--container <id>', 'only this container')
    .addOption(new Option('-f, --format <format>', 'table or json').choices(['table', 'json']).default('table'))
    .action(async (flags: { sandbox: string; container?: string; format: 'table' | 'json' }, command: Command) => {
      const { listVolumes } = await import('../../runtime/block-volumes.js');
      const ctx = contextFor(command);
      const volumes = await listVolumes(ctx.runtime, flags.sandbox, flags.container);
      ctx.print(flags.format === 'json' ? JSON.stringify(volumes) : table(volumes));
    });
}
