import { defineBackendConfig } from '@veil/agent-core';
import { z } from 'zod';

/**
 * `encryption.wireguard`: the WireGuard backend's own configuration section. Core never reads it;
 * the agent validates it with this schema (flags `--encryption.wireguard.<key>`, env
 * `VEIL_ENCRYPTION_WIREGUARD_<KEY>`) and the backend reads it with `backendSection`.
 */
export const WireGuardConfigSchema = z.strictObject({
  /** UDP listen port on every node (peers' endpoints use the same port). */
  port: z.number().int().min(1).max(65535).default(51871),
  /** Run wireguard-go when the kernel has no WireGuard module. */
  userspaceFallback: z.boolean().default(false),
  /** Seconds; 0 disables. */
  persistentKeepalive: z.number().int().min(0).max(65535).default(0),
  /** 0 = derive from the underlying device. */
  mtu: z
    .number()
    .int()
    .refine((v) => v === 0 || (v >= 1280 && v <= 65535), 'must be 0 (auto) or 1280..65535')
    .default(0),
});

/** The validated `encryption.wireguard` section. */
export type WireGuardConfig = z.infer<typeof WireGuardConfigSchema>;

/** The section as agent-core loads it (the package's `config` export). */
export const wireguardConfig = defineBackendConfig<WireGuardConfig>({
  section: 'wireguard',
  schema: WireGuardConfigSchema,
  defaults: WireGuardConfigSchema.parse({}),
});
