import type { Command } from 'commander';
import { buildImage, defaultImageDir } from '../../image/build-image.js';
import { contextFor } from '../command-context.js';

export function registerImage(program: Command): void {
  const image = program.command('image').description('guest image (kernel and initrd) management');
  image
    .command('build')
    .description('build the guest kernel and initrd from Debian packages and the bundled agent')
    .option('--output <dir>', 'where to write vmlinuz and kata-ts-initrd.img', defaultImageDir)
    .action(async (options: { output: string }, command: Command) => {
      const ctx = contextFor(command);
      const result = await buildImage({ outputDir: options.output, progress: (step) => process.stderr.write(`image: ${step}\n`) });
      ctx.print(`kernel: ${result.kernel}\ninitrd: ${result.initrd}\nkernel package: ${result.kernelPackage}\n${result.upToDate ? 'up to date' : 'built'} in ${result.seconds.toFixed(1)} s (digest ${result.digest.slice(0, 12)})`);
    });
}
