import { describe, it } from 'vitest';
import { type Capability, inCI, missingReason } from './capabilities.js';

/**
 * A describe() for suites that need kernel capabilities or system tools.
 *
 * - Everything present: runs normally.
 * - Something missing outside CI: skips, and says why (in the suite name and on stderr).
 * - Something missing in CI (CI=true): fails with the reason. CI never silently skips.
 */
export function describePrivileged(name: string, needs: Capability[], fn: () => void): void {
  const reasons = needs.map(missingReason).filter((r): r is string => r !== undefined);
  if (reasons.length === 0) {
    describe(name, fn);
    return;
  }
  const why = reasons.join('; ');
  if (inCI) {
    describe(name, () => {
      it('has the capabilities it needs', () => {
        throw new Error(`CI=true and this suite cannot run: ${why}`);
      });
    });
    return;
  }
  process.stderr.write(`[skip] ${name}: ${why}\n`);
  describe.skip(`${name} (skipped: ${why})`, fn);
}
