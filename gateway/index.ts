export type { AccessSnapshot } from './access-control.js'
export { DEFAULT_SCRYPT, hashPassword, parsePasswordHash, verifyPassword } from './auth/password.js'
export { LanGateway, type LanGatewayOptions } from './broker.js'
export { GatewayError, type GatewayErrorCode } from './errors.js'
export type { Listener } from './listeners/index.js'
export { DEFAULT_POLICY, type LoadedAccess, loadAccess } from './load-access.js'
export {
  type Device,
  DeviceRegistry,
  type DeviceSpec,
  type PasswordVerifier,
  readPskFile,
} from './registry.js'
export type { ReloadReport } from './reload.js'
export type { OfferResult, UplinkMessage, UplinkSink } from './uplink.js'
