/**
 * Bounds what devices can make the broker keep as retained messages (aedes
 * keeps them in memory): at most `maxMessages` topics and `maxBytes` of
 * topic and payload together (the topic is kept too, and may be the larger). A
 * retained PUBLISH that would pass either is still delivered, but not retained.
 * An empty retained payload clears its topic (MQTT-3.3.1-10).
 */
export class RetainedLimit {
  private readonly sizes = new Map<string, number>()
  private bytes = 0

  constructor(
    readonly maxMessages: number,
    readonly maxBytes: number,
  ) {}

  get messages(): number {
    return this.sizes.size
  }

  get totalBytes(): number {
    return this.bytes
  }

  /** Whether a retained PUBLISH of `payloadBytes` on `topic` may be kept; counts it (topic included) if so. */
  admit(topic: string, payloadBytes: number): boolean {
    const previous = this.sizes.get(topic)
    if (payloadBytes === 0) {
      if (previous !== undefined) {
        this.sizes.delete(topic)
        this.bytes -= previous
      }
      return true
    }
    const size = Buffer.byteLength(topic) + payloadBytes
    const messages = this.sizes.size + (previous === undefined ? 1 : 0)
    const bytes = this.bytes - (previous ?? 0) + size
    if (messages > this.maxMessages || bytes > this.maxBytes) return false
    this.sizes.set(topic, size)
    this.bytes = bytes
    return true
  }
}
