export * from './peer.js';
export * from './distributor.js';
export * from './datapath.js';
export * from './backend.js';
export * from './events.js';
