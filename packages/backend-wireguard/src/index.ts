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
// wgtypes: the key and the device/peer types every driver shares (wgctrl-go's wgtypes).
export { Key, WG_KEY_LEN } from './wgtypes/key.js';
export type { DeviceConfig, PeerConfig, WireGuardDevice, WireGuardPeer, Endpoint, DeviceRef } from './wgtypes/types.js';
// wgclient: one client asking each driver in turn; each driver with its codec beside it.
export { type DriverKind, type DeviceReadOptions, type WgDriver } from './wgclient/driver.js';
export { WgClient, type WgClientOptions, type ServedDevice } from './wgclient/client.js';
export { KernelDriver, type KernelDriverOptions } from './wgclient/kernel/driver.js';
export {
  WireGuardClient,
  WireGuardUnavailableError,
  WireGuardDeviceNotFoundError,
  type WireGuardClientOptions,
  type GetDeviceOptions,
} from './wgclient/kernel/genl.js';
export { encodeSetDevice, WG_DEFAULT_MAX_MESSAGE } from './wgclient/kernel/codec.js';
export { UserspaceDriver, DEFAULT_SOCKET_DIR, type UserspaceDriverOptions } from './wgclient/userspace/driver.js';
export { encodeSet, GET_REQUEST } from './wgclient/userspace/configure.js';
export { parseGet, parseSetReply, type ParseGetOptions } from './wgclient/userspace/parse.js';
export {
  WireGuardGoSupervisor,
  WG_RUN_DIR,
  isWgRunDir,
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
export {
  WireGuardBackend,
  DEFAULT_DEVICE,
  PUBLIC_KEY_ANNOTATION,
  KEY_SIGNATURE_ANNOTATION,
  rotationMessage,
  type WireGuardBackendOptions,
} from './backend.js';
export { wireguardModule } from './module.js';
export { wireguardConfig, WireGuardConfigSchema, type WireGuardConfig } from './config.js';
/** This backend's `encryption.wireguard` section, loaded by agent-core beside the default export. */
export { wireguardConfig as config } from './config.js';

import { wireguardModule } from './module.js';
/** What `encryption.type: wireguard` loads (agent-core's loadBackendModule). */
export default wireguardModule();
export { xeddsaSign, xeddsaVerify } from './xeddsa.js';
