/** Test doubles for agent-core's interfaces (`@veil/agent-core/fake`). */
export { FakeBackend, FAKE_KEY_ANNOTATION, isBase64Key32, type FakeBackendCall } from './backend.js';
export { FakeDatapath } from './datapath.js';
export { RecordingEventRecorder } from './events.js';
export { fakeKey, fakeNode, captureLogger } from './fixtures.js';
export { MemoryNodeIdStore } from './node-ids.js';
