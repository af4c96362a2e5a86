import { from, Observable, type ObservableInput, type OperatorFunction, Subscription } from 'rxjs'

/**
 * RxJS `mergeMap` (no concurrency limit) for a step that nearly always has its answer at
 * once: when `project` returns an array its values are emitted there and then, with no inner
 * subscription; anything else (an Observable, a promise) is subscribed to as mergeMap would.
 * The uplink's per-message steps (map-topic, acknowledge) return `[value]` for every message
 * and an Observable only to set one aside, so this saves the inner subscription mergeMap
 * makes for each message (docs/performance.md, "Per-message work of the uplink").
 *
 * Semantics kept from mergeMap: a throw from `project` or an error of an inner errors the
 * result; it completes once the source and every inner have; unsubscribing ends the inners.
 */
export function flatMapNow<T, R>(project: (value: T) => R[] | ObservableInput<R>): OperatorFunction<T, R> {
  return (source) =>
    new Observable<R>((subscriber) => {
      const inners = new Subscription()
      let active = 0
      let sourceDone = false
      const completeIfDone = () => {
        if (sourceDone && active === 0) subscriber.complete()
      }
      const outer = source.subscribe({
        next(value) {
          let out: R[] | ObservableInput<R>
          try {
            out = project(value)
          } catch (err) {
            subscriber.error(err)
            return
          }
          if (Array.isArray(out)) {
            for (const r of out) subscriber.next(r)
            return
          }
          active++
          let done = false
          let inner: Subscription | undefined
          inner = from(out).subscribe({
            next: (r) => subscriber.next(r),
            error: (err: unknown) => subscriber.error(err),
            complete: () => {
              done = true
              active--
              if (inner) inners.remove(inner)
              completeIfDone()
            },
          })
          // An inner that completed while subscribing holds nothing to end later.
          if (!done) inners.add(inner)
        },
        error: (err: unknown) => subscriber.error(err),
        complete: () => {
          sourceDone = true
          completeIfDone()
        },
      })
      return () => {
        outer.unsubscribe()
        inners.unsubscribe()
      }
    })
}
