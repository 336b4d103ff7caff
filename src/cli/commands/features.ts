import type { Command } from 'commander';
import { contextFor } from '../command-context.js';

export function registerFeatures(program: Command): void {
  program
    .command('features')
    .description('print the runtime-spec features kata-ts supports, as JSON (runc features)')
    .action(async (_flags: object, command: Command) => {
      const { runtimeFeatures } = await import('../../runtime/runtime-features.js');
      const { kataTsVersion } = await import('../../util/version.js');
      contextFor(command).print(JSON.stringify(runtimeFeatures(kataTsVersion), null, 2));
    });
}
