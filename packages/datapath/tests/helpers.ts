// The fixtures the datapath suites share with agent-core's (from its test-doubles entry).
import { DEFAULT_CONFIG, type AgentConfig } from '@veil/agent-core';

export { fakeKey as keyFor, fakeNode as node, captureLogger } from '@veil/agent-core/fake';

export function testConfig(over: Partial<AgentConfig> = {}): AgentConfig {
  // Encryption on: with encryption.enabled=false (the default) the agent programs no peers (issue 12).
  return { ...DEFAULT_CONFIG, encryption: { ...DEFAULT_CONFIG.encryption, enabled: true }, nodeName: 'local', ...over };
}
