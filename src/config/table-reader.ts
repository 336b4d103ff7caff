import path from 'node:path';
import { KataError } from '../util/errors.js';

type TomlTable = Record<string, unknown>;

function isTable(value: unknown): value is TomlTable {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

export function tableAt(root: TomlTable, dotted: string): TomlTable | undefined {
  let node: unknown = root;
  for (const part of dotted.split('.')) {
    if (!isTable(node)) return undefined;
    node = node[part];
  }
  return isTable(node) ? node : undefined;
}

export { isTable };

/**
 * Reads typed values out of one TOML table, remembering which keys were used
 * so that the rest can be reported as unknown. Every error names file and key.
 */
export class TableReader {
  private readonly used = new Set<string>();

  constructor(
    private readonly file: string,
    private readonly section: string,
    private readonly table: TomlTable,
  ) {}

  private fail(key: string, expected: string, got: unknown): never {
    throw new KataError(
      'CONFIG_INVALID',
      `${this.file}: ${this.section}.${key} must be ${expected}, got ${JSON.stringify(got)}`,
    );
  }

  private take(key: string): unknown {
    this.used.add(key);
    return this.table[key];
  }

  string(key: string, fallback: string): string {
    const value = this.take(key);
    if (value === undefined) return fallback;
    if (typeof value !== 'string') this.fail(key, 'a string', value);
    // A NUL byte would cut the value short wherever it reaches C (a path, an argument).
    if (value.includes('\0')) this.fail(key, 'a string without NUL bytes', value.replaceAll('\0', '\\0'));
    return value;
  }

  /** A file path; relative paths resolve against the configuration file's directory. */
  path(key: string, fallback: string): string {
    const value = this.string(key, fallback);
    return value === '' ? '' : path.resolve(path.dirname(this.file), value);
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.take(key);
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') this.fail(key, 'true or false', value);
    return value;
  }

  integer(key: string, fallback: number, range: { min: number; max: number }): number {
    const raw = this.take(key);
    if (raw === undefined) return fallback;
    const value = typeof raw === 'bigint' ? Number(raw) : raw;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < range.min || value > range.max) {
      this.fail(key, `an integer from ${range.min} to ${range.max}`, typeof raw === 'bigint' ? Number(raw) : raw);
    }
    return value;
  }

  oneOf<T extends string>(key: string, values: readonly T[], fallback: T): T {
    const value = this.take(key);
    if (value === undefined) return fallback;
    if (typeof value !== 'string' || !(values as readonly string[]).includes(value)) {
      this.fail(key, `one of ${values.map((v) => `"${v}"`).join(', ')}`, value);
    }
    return value as T;
  }

  strings(key: string, fallback: string[]): string[] {
    const value = this.take(key);
    if (value === undefined) return fallback;
    if (!Array.isArray(value) || !value.every((item): item is string => typeof item === 'string' && !item.includes('\0'))) {
      this.fail(key, 'an array of strings without NUL bytes', value);
    }
    return value;
  }

  /** Keys present in the table that no reader asked for. */
  unknownKeys(): string[] {
    return Object.keys(this.table)
      .filter((key) => !this.used.has(key))
      .map((key) => `${this.section}.${key}`);
  }
}
