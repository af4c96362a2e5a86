/**
 * Replace a file so that a crash leaves either the old or the new content: the
 * one durable replace the project has (tmp, fsync, rename, directory fsync).
 */
export { writeFileDurably } from '../core/durable-file.js'
