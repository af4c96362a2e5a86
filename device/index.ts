/** The device SDK: what devices, the lab, the tests and the simulator use to protect what they publish. */
export type { HpkeSealRecipient } from '../crypto/hpke.js'
export { DeviceError, type DeviceErrorCode } from './errors.js'
export { DeviceProtector } from './protector.js'
export { DEFAULT_BLOCK_SIZE, MAX_SEQ, SequenceCounter } from './sequence.js'
