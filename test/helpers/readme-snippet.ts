import { readFileSync } from 'node:fs';
import path from 'node:path';
import { kataTsBin, repoRoot } from './fixtures.js';

/** Where the README's snippets expect kata-ts (`npm install -g .` on Debian's Node). */
export const readmeKataTsPath = '/usr/bin/kata-ts';

/**
 * The code block between `<!-- snippet: NAME -->` and `<!-- /snippet -->` in
 * README.md, with kata-ts's path swapped for this checkout's: tests run the
 * README's own snippets, so the README cannot drift from what is tested.
 */
export function readmeSnippet(name: string): string {
  const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const start = readme.indexOf(`<!-- snippet: ${name} -->`);
  if (start < 0) throw new Error(`README.md has no snippet ${name}`);
  const end = readme.indexOf('<!-- /snippet -->', start);
  const block = readme.slice(start, end).match(/```[a-z]*\n([\s\S]*?)```/);
  if (!block?.[1]) throw new Error(`README.md snippet ${name} has no code block`);
  return block[1].replaceAll(readmeKataTsPath, kataTsBin);
}
