import { afterAll, beforeAll } from 'vitest';
import { TestNetns } from '@veil/test-utils';
import { NetlinkSocket, type ProtocolName } from '../src/index.js';

/** Polls `get` every 10 ms until it returns a value; rejects after `timeoutMs`. */
export function waitFor<T>(get: () => T | undefined, timeoutMs = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const poll = () => {
      const v = get();
      if (v !== undefined) resolve(v);
      else if (Date.now() - start > timeoutMs) reject(new Error('timed out waiting for events'));
      else setTimeout(poll, 10);
    };
    poll();
  });
}

/** A test netns and a socket opened inside it, both valid inside the tests of the calling describe block. */
export interface NetnsSocket {
  readonly ns: TestNetns;
  readonly sock: NetlinkSocket;
}

/**
 * Registers the describe block's beforeAll/afterAll: creates a netns (`prefix` names it) and opens a
 * `protocol` socket in it, then closes and removes both.
 */
export function netnsSocket(prefix: string, protocol: ProtocolName): NetnsSocket {
  let ns: TestNetns | undefined;
  let sock: NetlinkSocket | undefined;
  beforeAll(() => {
    ns = TestNetns.create(prefix);
    sock = NetlinkSocket.open(protocol, { netns: ns.path });
  });
  afterAll(() => {
    sock?.close();
    ns?.remove();
  });
  return {
    get ns() {
      return ns!;
    },
    get sock() {
      return sock!;
    },
  };
}
