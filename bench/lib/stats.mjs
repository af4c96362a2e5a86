/** Nearest-rank percentiles of `values` (any numeric array), as an array in the order of `quantiles`. */
export function percentiles(values, quantiles) {
  if (values.length === 0) return quantiles.map(() => null)
  const sorted = Float64Array.from(values).sort()
  return quantiles.map(
    (q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))],
  )
}

/** Median, min, max and sum of the numbers in `values` (nulls left out); null when there are none. */
export function summarize(values) {
  const xs = values.filter((v) => typeof v === 'number' && Number.isFinite(v))
  if (xs.length === 0) return null
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
  const sum = xs.reduce((a, b) => a + b, 0)
  return { median, min: sorted[0], max: sorted[sorted.length - 1], n: sorted.length, sum }
}
