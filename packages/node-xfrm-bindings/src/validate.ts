import { XfrmValidationError } from './errors.js';

/** An integer in [min, max] or a validation error naming `field`. */
export function checkInt(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new XfrmValidationError(field, `must be an integer ${min}..${max}, got ${typeof v === 'number' ? v : typeof v}`);
  }
  return v;
}

export const U32_MAX = 0xffff_ffff;

export function checkU32(field: string, v: unknown): number {
  return checkInt(field, v, 0, U32_MAX);
}

/** An XFRM interface id (`if_id`): a u32, and not 0, which the kernel reads as "none". */
export function checkIfId(field: string, v: unknown): number {
  if (v === 0) throw new XfrmValidationError(field, '0 means "no interface id"; leave it undefined');
  return checkU32(field, v);
}

export function checkOneOf<T extends string>(field: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new XfrmValidationError(field, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${JSON.stringify(v)}`);
  }
  return v as T;
}

export function checkObject(field: string, v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new XfrmValidationError(field, 'must be an object');
  return v as Record<string, unknown>;
}
