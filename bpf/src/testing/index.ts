export {
  arpRequest,
  decodeIcmpError,
  ETH_P_ARP,
  ETH_P_IP,
  ETH_P_IPV6,
  ethernet,
  GW_MAC,
  type IcmpError,
  icmpEcho,
  internetChecksum,
  type IpOptions,
  ipPacket,
  IPPROTO,
  l4Checksum,
  type L4Options,
  POD_MAC,
  tcpPacket,
  udpPacket,
} from './packets.js';
export { type LabNode, type LabOptions, TwoNodeLab, WG_PORT } from './lab.js';
export { attachLabDatapath, loadLabDatapath } from './lab-datapath.js';
