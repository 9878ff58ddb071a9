import { constants } from 'node:os';

// errno number -> symbolic name ('EEXIST'), built from Node's own table so it matches the platform.
const byNumber = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  if (!byNumber.has(value)) byNumber.set(value, name);
}
// Linux aliases: prefer the names the kernel sources use (EOPNOTSUPP over ENOTSUP).
for (const preferred of ['EOPNOTSUPP', 'EAGAIN']) {
  const n = (constants.errno as Record<string, number | undefined>)[preferred];
  if (n !== undefined) byNumber.set(n, preferred);
}

/** Maps a positive errno number to its code name ('ENOENT'), or 'E<n>' when unknown. */
export function errnoCode(errno: number): string {
  const n = Math.abs(errno);
  return byNumber.get(n) ?? `E${n}`;
}

/** Maps a code name ('EEXIST') back to its positive errno number, or undefined. */
export function errnoNumber(code: string): number | undefined {
  return (constants.errno as Record<string, number | undefined>)[code];
}
