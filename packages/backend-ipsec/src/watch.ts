import { NetlinkSocket } from '@veil/netlink';
import { nl } from 'node-xfrm-bindings';

/** XFRM multicast groups (enum xfrm_nlgroups in linux/xfrm.h). */
export const XFRMNLGRP_SA = 3;
export const XFRMNLGRP_POLICY = 4;

/** The notifications that can mean an object of this backend changed or disappeared. */
const CHANGES: Readonly<Record<number, string>> = {
  [nl.XFRM_MSG_DELSA]: 'state delete',
  [nl.XFRM_MSG_UPDSA]: 'state update',
  [nl.XFRM_MSG_FLUSHSA]: 'state flush',
  [nl.XFRM_MSG_DELPOLICY]: 'policy delete',
  [nl.XFRM_MSG_UPDPOLICY]: 'policy update',
  [nl.XFRM_MSG_FLUSHPOLICY]: 'policy flush',
};

/** A subscription to XFRM notifications; `close()` releases the socket. */
export interface XfrmWatch {
  close(): void;
}

/**
 * Calls `onChange` with what happened (`state delete`, `policy flush` …) whenever the kernel
 * announces a deletion, update or flush of an SA or policy (`ip xfrm monitor`). Additions are
 * not reported: they cannot remove or change what this backend installed.
 */
export function watchXfrm(
  opts: { netns?: string },
  onChange: (what: string) => void,
  onError: (err: Error) => void = () => undefined,
): XfrmWatch {
  const sock = NetlinkSocket.open('XFRM', {
    ...(opts.netns ? { netns: opts.netns } : {}),
    groups: [XFRMNLGRP_SA, XFRMNLGRP_POLICY],
  });
  sock.on('message', (msg) => {
    const what = CHANGES[msg.type];
    if (what) onChange(what);
  });
  // A lost notification (receive buffer overrun) could hide a deletion: treat it as a change.
  sock.on('overrun', () => onChange('notifications lost'));
  sock.on('error', (e) => onError(e));
  return { close: () => sock.close() };
}
