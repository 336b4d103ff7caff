import { Option, type Command } from 'commander';
import { rootfsTypes, type RootfsType } from '../../config/runtime-config.js';
import { defaultImageDir } from '../../image/image-dir.js';
import { contextFor } from '../command-context.js';

export function registerImage(program: Command): void {
  const image = program.command('image').description('guest image (kernel, root image, initrds) management');
  image
    .command('build')
    .description('build the guest kernel, root image and initrds from Debian packages and the bundled agent')
    .option('--output <dir>', 'where to write the guest files', defaultImageDir)
    .addOption(new Option('--rootfs-type <type>', 'file system of the root image').choices(rootfsTypes).default('erofs'))
    .option('--no-agent-snapshot', 'start the agent from its bundle and code cache, not from a V8 startup snapshot')
    .action(async (options: { output: string; rootfsType: RootfsType; agentSnapshot: boolean }, command: Command) => {
      const ctx = contextFor(command);
      const { buildImage } = await import('../../image/build-image.js');
      const result = await buildImage({ outputDir: options.output, rootfsType: options.rootfsType, agentSnapshot: options.agentSnapshot, progress: (step) => process.stderr.write(`image: ${step}\n`) });
      const f = result.files;
      ctx.print([
        `kernel: ${f.vmlinux} (kata-ts guest kernel, drivers built in)`,
        `Debian kernel: ${f.vmlinuxDebian} (uncompressed) and ${f.bzImage} (bzImage); its boot initrd: ${f.bootInitrd}`,
        `root image: ${f.rootfs} (${result.rootfsType})`,
        `full initrd: ${f.fullInitrd}`,
        `agent start: ${result.agentSnapshot ? 'V8 startup snapshot (on a TCG guest), else bundle with V8 code cache' : 'bundle with V8 code cache'}`,
        `kernel package: ${result.kernelPackage}`,
        `${result.upToDate ? 'up to date' : 'built'} in ${result.seconds.toFixed(1)} s (digest ${result.digest.slice(0, 12)})`,
      ].join('\n'));
    });
}
