import { describe, expect, it } from 'vitest';
import { describePrivileged } from '@veil/test-utils';
import {
  FamilyNotFoundError,
  NetlinkSocket,
  NetlinkValidationError,
  attr,
  decodeGenlmsg,
  decodeNlmsgs,
  encodeGenlmsghdr,
  encodeNlmsg,
  genlDump,
  genlRequest,
  listFamilies,
  resolveFamily,
} from '../src/index.js';
import {
  CTRL_ATTR_FAMILY_ID,
  CTRL_ATTR_FAMILY_NAME,
  CTRL_ATTR_MCAST_GROUPS,
  CTRL_ATTR_MCAST_GRP_ID,
  CTRL_ATTR_MCAST_GRP_NAME,
  CTRL_ATTR_VERSION,
  CTRL_CMD_GETFAMILY,
  GENL_ID_CTRL,
} from '../src/genl/constants.js';
import { decodeFamily } from '../src/genl/ctrl.js';
import { netnsSocket } from './helpers.js';

describe('generic netlink codecs', () => {
  it('genlmsghdr is cmd, version, 2 reserved bytes', () => {
    expect(encodeGenlmsghdr(CTRL_CMD_GETFAMILY, 1).toString('hex')).toBe('03010000');
    expect(() => encodeGenlmsghdr(256, 1)).toThrow(NetlinkValidationError);
  });

  it('decodes a CTRL_CMD_NEWFAMILY reply with multicast groups', () => {
    const payload = Buffer.concat([
      encodeGenlmsghdr(1, 2),
      attr.u16(CTRL_ATTR_FAMILY_ID, 0x1a),
      attr.string(CTRL_ATTR_FAMILY_NAME, 'wireguard'),
      attr.u32(CTRL_ATTR_VERSION, 1),
      attr.nested(CTRL_ATTR_MCAST_GROUPS, [
        attr.nested(1, [attr.string(CTRL_ATTR_MCAST_GRP_NAME, 'config'), attr.u32(CTRL_ATTR_MCAST_GRP_ID, 7)]),
      ]),
      attr.u32(99, 1), // unknown attribute: kept, ignored
    ]);
    const [msg] = decodeNlmsgs(encodeNlmsg({ type: GENL_ID_CTRL }, payload));
    const fam = decodeFamily(msg!);
    expect(fam).toMatchObject({ id: 0x1a, name: 'wireguard', version: 1 });
    expect([...fam.mcastGroups]).toEqual([['config', 7]]);
    expect(
      decodeGenlmsg(msg!)
        .attrs.unknown([1, 2, 3, 7])
        .map((a) => a.type),
    ).toEqual([99]);
  });

  it('rejects bad family names and non-generic sockets before any syscall', async () => {
    const route = NetlinkSocket.open('ROUTE');
    try {
      await expect(resolveFamily(route, 'nlctrl')).rejects.toMatchObject({ field: 'socket' });
    } finally {
      route.close();
    }
    const gen = NetlinkSocket.open('GENERIC');
    try {
      await expect(resolveFamily(gen, '')).rejects.toBeInstanceOf(NetlinkValidationError);
      await expect(resolveFamily(gen, 'x'.repeat(16))).rejects.toMatchObject({ field: 'family' });
      await expect(genlRequest(gen, 3, 1, [])).rejects.toMatchObject({ field: 'family' });
    } finally {
      gen.close();
    }
  });
});

describePrivileged('generic netlink controller (real kernel, test netns)', ['root', 'netns'], () => {
  const env = netnsSocket('nlg', 'GENERIC');

  it('resolves nlctrl (id 0x10) with its ops and "notify" multicast group', async () => {
    const f = await resolveFamily(env.sock, 'nlctrl');
    expect(f.id).toBe(GENL_ID_CTRL);
    expect(f.name).toBe('nlctrl');
    expect(f.version).toBeGreaterThanOrEqual(1);
    expect(f.ops.has(CTRL_CMD_GETFAMILY)).toBe(true);
    expect(f.mcastGroups.get('notify')).toBeGreaterThan(0);
  });

  it('a missing family is a typed FamilyNotFoundError wrapping ENOENT', async () => {
    const err = await resolveFamily(env.sock, 'veil-nope').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FamilyNotFoundError);
    expect(err).toMatchObject({ family: 'veil-nope', cause: { code: 'ENOENT', operation: 'CTRL_CMD_GETFAMILY' } });
  });

  it('lists families, agreeing with resolveFamily', async () => {
    const all = await listFamilies(env.sock);
    const ctrl = all.find((f) => f.name === 'nlctrl');
    expect(ctrl?.id).toBe(GENL_ID_CTRL);
    for (const f of all.slice(0, 5)) expect((await resolveFamily(env.sock, f.name)).id).toBe(f.id);
  });

  it('genlRequest / genlDump against the controller', async () => {
    const ctrl = await resolveFamily(env.sock, 'nlctrl');
    const one = await genlRequest(env.sock, ctrl, CTRL_CMD_GETFAMILY, [attr.string(CTRL_ATTR_FAMILY_NAME, 'nlctrl')]);
    expect(one).toHaveLength(1);
    expect(one[0]!.attrs.u16(CTRL_ATTR_FAMILY_ID)).toBe(GENL_ID_CTRL);
    const many = await genlDump(env.sock, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, []);
    expect(many.length).toBeGreaterThan(1);
  });

  it('joins a family multicast group by id; an unknown group id is a typed EINVAL', async () => {
    const ctrl = await resolveFamily(env.sock, 'nlctrl');
    const notify = ctrl.mcastGroups.get('notify')!;
    expect(() => env.sock.joinGroup(notify)).not.toThrow();
    expect(() => env.sock.leaveGroup(notify)).not.toThrow();
    expect(() => env.sock.joinGroup(0xfff0)).toThrow(
      expect.objectContaining({ name: 'NetlinkSyscallError', code: 'EINVAL', syscall: 'setsockopt(NETLINK_ADD_MEMBERSHIP)' }),
    );
  });
});
