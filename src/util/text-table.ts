/** Rows (header first) padded into columns, as ps and runc list print them; the last column is not padded. */
export function formatTable(rows: string[][], separator = '   '): string {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join(separator).trimEnd()).join('\n');
}
