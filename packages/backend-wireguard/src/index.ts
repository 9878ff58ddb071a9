// Curated public API of @veil/backend-wireguard.

export {
  WgBackendError,
  WgValidationError,
  WgDeviceNotFoundError,
  UapiError,
  UapiProtocolError,
  UapiTransportError,
  KeyFileError,
  WireGuardNotAvailableError,
  SupervisorError,
} from './errors.js';
export { type DriverKind, type DeviceReadOptions, type WgDriver } from './wgclient/driver.js';
export { WgClient, type WgClientOptions, type ServedDevice } from './wgclient/client.js';
export { KernelDriver, type KernelDriverOptions } from './wgclient/kernel.js';
export { UserspaceDriver, DEFAULT_SOCKET_DIR, type UserspaceDriverOptions } from './wgclient/userspace.js';
export { encodeSet, GET_REQUEST } from './userspace/configure.js';
export { parseGet, parseSetReply, type ParseGetOptions } from './userspace/parse.js';
export {
  WireGuardGoSupervisor,
  type SupervisorOptions,
  type SupervisorEvents,
  type BackoffOptions,
} from './userspace/supervisor.js';
export { KeyStore, type KeyStoreOptions } from './keys.js';
export { setupDevice, underlayMtu, WG_OVERHEAD, type DeviceSetupOptions, type WgDeviceHandle } from './device.js';
export {
  diffPeers,
  diffPeer,
  peerFromNode,
  PeerReconciler,
  type DesiredPeer,
  type NodePeerSpec,
  type DiffOptions,
  type PeerDeviceClient,
} from './peers.js';
export { canonicalCidr, formatEndpoint, parseEndpoint } from './ip.js';
// Re-exported so users need not import @veil/netlink for the shared WireGuard types.
export { Key, type DeviceConfig, type PeerConfig, type WireGuardDevice, type WireGuardPeer, type Endpoint } from '@veil/netlink';
export { WireGuardBackend, PUBLIC_KEY_ANNOTATION, type WireGuardBackendOptions } from './backend.js';
export { wireguardModule } from './module.js';

import { wireguardModule } from './module.js';
/** What `encryption.type: wireguard` loads (agent-core's loadBackendModule). */
export default wireguardModule();
