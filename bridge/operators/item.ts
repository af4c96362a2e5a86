import type { QueueEntry } from '../queue/queue.js'

/** An entry on its way to the cloud, and where it is held: the queue, or the dead letters (a retry). */
export interface Item {
  entry: QueueEntry
  from: 'queue' | 'dead-letter'
}
