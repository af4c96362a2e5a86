export {
  type AclAccess,
  type AclEntry,
  type AclParseResult,
  type AclPatternEntry,
  type AclTopicEntry,
  parseAclFile,
} from './acl-file.js'
export { aclFilterProblem } from './acl-filter.js'
export { MOSQUITTO_ACL_DIFFERENCES } from './differences.js'
export { MosquittoImportError, type MosquittoImportErrorCode } from './errors.js'
export type { LineLimits, LineProblem } from './lines.js'
export {
  MosquittoPasswordVerifier,
  type PasswordFileEntry,
  type PasswordFileLimits,
  type PasswordFileResult,
  parsePasswordFile,
} from './password-file.js'
export {
  DEFAULT_MAX_ITERATIONS,
  type HashLimits,
  type MosquittoPasswordHash,
  parseMosquittoHash,
  verifyMosquittoPassword,
} from './password-hash.js'
export { type PskFileEntry, type PskFileLimits, type PskFileResult, parsePskFile } from './psk-file.js'
export { readMosquittoFile } from './read-file.js'
export { type AclConversion, type AclConversionOptions, aclToPolicy, type UnmappedLine } from './to-policy.js'
