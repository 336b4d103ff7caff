import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * Facts read from a host's /proc, /sys, /dev and /etc. Everything is read
 * below `root`, so unit tests point it at a fixture tree.
 */
export interface CpuInfo {
  vendor: string;
  model: string;
  flags: Set<string>;
}

export class HostFacts {
  constructor(readonly root: string = '/') {}

  private at(p: string): string {
    return path.join(this.root, p);
  }

  async cpuInfo(): Promise<CpuInfo> {
    const text = await readFile(this.at('proc/cpuinfo'), 'utf8').catch(() => '');
    // The first processor block is enough: flags are the same on every core.
    const block = text.split(/\n\s*\n/)[0] ?? '';
    const field = (name: string): string => {
      const line = block.split('\n').find((l) => l.split(':')[0]?.trim() === name);
      return line ? line.slice(line.indexOf(':') + 1).trim() : '';
    };
    return { vendor: field('vendor_id'), model: field('model name'), flags: new Set(field('flags').split(/\s+/).filter(Boolean)) };
  }

  /** A module is loaded (or built in with parameters) when /sys/module/<name> exists. */
  async moduleLoaded(name: string): Promise<boolean> {
    return exists(this.at(`sys/module/${name}`));
  }

  /** 'char' when the node is a character device we may open read-write. */
  async deviceNode(devPath: string): Promise<'missing' | 'not-char' | 'no-access' | 'char'> {
    const full = this.at(devPath);
    try {
      const st = await stat(full);
      if (!st.isCharacterDevice()) return 'not-char';
    } catch {
      return 'missing';
    }
    try {
      await access(full, constants.R_OK | constants.W_OK);
      return 'char';
    } catch {
      return 'no-access';
    }
  }

  async kernelRelease(): Promise<string> {
    return (await readFile(this.at('proc/sys/kernel/osrelease'), 'utf8').catch(() => 'unknown')).trim();
  }

  async distro(): Promise<{ name: string; version: string }> {
    const text = await readFile(this.at('etc/os-release'), 'utf8').catch(() => '');
    const value = (key: string): string => {
      const line = text.split('\n').find((l) => l.startsWith(`${key}=`));
      return line ? line.slice(key.length + 1).replace(/^"|"$/g, '') : '';
    };
    return { name: value('NAME') || 'unknown', version: value('VERSION_ID') || 'unknown' };
  }

  async readable(file: string): Promise<boolean> {
    try {
      await access(file, constants.R_OK);
      return (await stat(file)).isFile();
    } catch {
      return false;
    }
  }

  async executable(file: string): Promise<boolean> {
    try {
      await access(file, constants.X_OK);
      return (await stat(file)).isFile();
    } catch {
      return false;
    }
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
