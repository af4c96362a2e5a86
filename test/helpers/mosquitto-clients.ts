export type { MosquittoClientConnection } from './mosquitto-args.js'
export { type MosquittoPubOptions, type MosquittoPubResult, mosquittoPub } from './mosquitto-pub.js'
export {
  MosquittoSub,
  type MosquittoSubOptions,
  type RawSubMessage,
  type SubMessage,
  stopAllMosquittoSubs,
} from './mosquitto-sub.js'
