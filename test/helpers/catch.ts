/** What `fn` throws, or fails the test if it returns. For asserting whole error objects. */
export function thrownBy(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  throw new Error('Expected the function to throw, but it returned')
}

/** What `promise` rejects with, or fails the test if it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (err) {
    return err
  }
  throw new Error('Expected the promise to reject, but it resolved')
}
