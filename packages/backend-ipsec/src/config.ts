import { defineBackendConfig, durationRe } from '@veil/agent-core';
import { z } from 'zod';

/**
 * `encryption.ipsec`: the IPsec backend's own configuration section (the chart's
 * `encryption.ipsec` values). Core never reads it; the agent validates it with this schema (flags
 * `--encryption.ipsec.<key>`, env `VEIL_ENCRYPTION_IPSEC_<KEY>`) and the backend reads it with
 * `backendSection`.
 */
export const IpsecConfigSchema = z.strictObject({
  /** Secret holding the key file (the chart mounts it; the agent reads only `keyFile`). */
  secretName: z.string().default('veil-ipsec-keys'),
  /** The key file, Cilium's format: `[spi][+] aead-algo aead-key icv-bits`. */
  keyFile: z.string().min(1).default('/etc/veil/ipsec/keys'),
  /** How long the previous key index stays installed after a rotation (Go duration). */
  keyRotationDuration: z.string().regex(durationRe, 'must be a duration like 5m or 90s').default('5m'),
});

/** The validated `encryption.ipsec` section. */
export type IpsecConfig = z.infer<typeof IpsecConfigSchema>;

/** The section as agent-core loads it (the package's `config` export). */
export const ipsecConfig = defineBackendConfig<IpsecConfig>({
  section: 'ipsec',
  schema: IpsecConfigSchema,
  defaults: IpsecConfigSchema.parse({}),
});
