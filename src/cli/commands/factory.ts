import type { Command } from 'commander';
import { contextFor } from '../command-context.js';

/** Kata 1.x's `kata-runtime factory`: the VM template that sandboxes are restored from ([factory] enable_template). */
export function registerFactory(program: Command): void {
  const factory = program.command('factory').description('the VM template sandboxes start from when [factory] enable_template = true');
  factory
    .command('init')
    .description('boot and save the VM template of this configuration now (create makes it otherwise, at its first use)')
    .action(async (_options: unknown, command: Command) => {
      const ctx = contextFor(command);
      const config = await ctx.loadConfig();
      const { sandboxAccelerator } = await import('../../runtime/sandbox-accelerator.js');
      const { initVmTemplate } = await import('../../runtime/sandbox-vm.js');
      const started = Date.now();
      const template = await initVmTemplate(config, await sandboxAccelerator(config, ctx.logger), ctx.logger);
      ctx.print(`VM template ${template.dir} ready (${Date.now() - started} ms)${config.factory.enableTemplate ? '' : '; enable_template is off, so create does not use it'}`);
    });
  factory
    .command('status')
    .description('list the saved VM templates')
    .action(async (_options: unknown, command: Command) => {
      const ctx = contextFor(command);
      const config = await ctx.loadConfig();
      const { listTemplates } = await import('../../runtime/vm-factory.js');
      const templates = await listTemplates(config.factory.templatePath);
      const lines = [`enable_template = ${config.factory.enableTemplate}, template_path = ${config.factory.templatePath}`];
      for (const t of templates) lines.push(`${t.key}  ${(t.memoryBytes / (1024 * 1024)).toFixed(1)} MiB of guest memory  saved ${t.created.toISOString()}`);
      if (templates.length === 0) lines.push('no VM template');
      ctx.print(lines.join('\n'));
    });
  factory
    .command('destroy')
    .description('remove every saved VM template (running sandboxes keep theirs)')
    .action(async (_options: unknown, command: Command) => {
      const ctx = contextFor(command);
      const config = await ctx.loadConfig();
      const { destroyTemplates } = await import('../../runtime/vm-factory.js');
      ctx.print(`removed ${await destroyTemplates(config.factory.templatePath)} VM template(s) from ${config.factory.templatePath}`);
    });
}
