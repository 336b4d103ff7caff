import { access, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { KataError } from '../../util/errors.js';
import { contextFor } from '../command-context.js';

export function registerSpec(program: Command): void {
  program
    .command('spec')
    .description('write a starting config.json into a bundle (as runc spec does)')
    .option('-b, --bundle <dir>', 'the bundle directory', '.')
    .option('--no-terminal', 'process.terminal = false')
    .option('--stdout', 'print it instead of writing config.json')
    .action(async (flags: { bundle: string; terminal: boolean; stdout?: boolean }, command: Command) => {
      const { defaultSpec } = await import('../../runtime/default-spec.js');
      const ctx = contextFor(command);
      const text = JSON.stringify(defaultSpec({ terminal: flags.terminal }), null, 2);
      if (flags.stdout) return ctx.print(text);
      const file = path.join(flags.bundle, 'config.json');
      if (await access(file).then(() => true, () => false)) throw new KataError('ALREADY_EXISTS', `${file} already exists`);
      await writeFile(file, text + '\n');
    });
}
