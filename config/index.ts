export { ConfigError, type ConfigErrorCode } from './errors.js'
export { checkConfigFiles, loadConfig, MAX_CONFIG_BYTES, parseConfig } from './load.js'
export type {
  CloudConfig,
  ConfigInput,
  DeviceConfig,
  DownlinkConfig,
  GatewayConfig,
  ListenerConfig,
  RotationConfig,
  TopicMapping,
  VpnConfig,
} from './schema.js'
export { configSchema } from './schema.js'
