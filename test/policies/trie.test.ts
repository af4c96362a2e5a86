import { describe, expect, it } from 'vitest'
import { filterCoveredBy, filtersIntersect } from '../../policies/topic-filter.js'
import { levelValue, type PlaceholderValues, TopicTrie } from '../../policies/trie.js'

const filters = [
  '#',
  '+',
  '+/+',
  '+/#',
  'a',
  'a/#',
  'a/+',
  'a/b',
  'a/b/#',
  'a/+/c',
  'a/b/c',
  '/+',
  '$SYS/#',
  '$SYS/+',
  '$SYS/broker/uptime',
  'x/%c/#',
  '%d/y',
  'u/%u',
]

const requests = [
  'a',
  'a/b',
  'a/b/c',
  'a/x/c',
  'a/#',
  'a/+',
  'a/+/c',
  '#',
  '+',
  '+/#',
  '/x',
  'b',
  '$SYS/broker/uptime',
  '$SYS/#',
  '$SYS',
  'x/cl-1/z',
  'x/cl-2/z',
  'x/+/z',
  'dev-1/y',
  'u/alice',
  'u/+',
]

const subs: PlaceholderValues = { clientId: 'cl-1', username: 'alice', deviceId: 'dev-1' }

function substitute(filter: string): string {
  return filter.replace('%c', 'cl-1').replace('%u', 'alice').replace('%d', 'dev-1')
}

function build(): TopicTrie<string> {
  const trie = new TopicTrie<string>()
  for (const f of filters) trie.insert(f, f)
  return trie
}

describe('TopicTrie', () => {
  it.each(requests)('covering(%j) agrees with filterCoveredBy', (request) => {
    const out: string[] = []
    build().covering(request.split('/'), subs, out)
    const expected = filters.filter((f) => filterCoveredBy(request, substitute(f)))
    expect(out.sort()).toEqual(expected.sort())
  })

  it.each(requests)('intersecting(%j) agrees with filtersIntersect', (request) => {
    const out: string[] = []
    build().intersecting(request.split('/'), subs, out)
    const expected = filters.filter((f) => filtersIntersect(request, substitute(f)))
    expect(out.sort()).toEqual(expected.sort())
  })

  it('counts what it holds, including two values under one filter', () => {
    const trie = new TopicTrie<number>()
    trie.insert('a/#', 1)
    trie.insert('a/#', 2)
    trie.insert('a', 3)
    expect(trie.size).toBe(3)
    const out: number[] = []
    trie.covering(['a'], subs, out)
    expect(out.sort()).toEqual([1, 2, 3])
  })

  it('a placeholder matches only the principal value, and nothing when it has none', () => {
    const trie = new TopicTrie<string>()
    trie.insert('u/%u/#', 'user')
    const out: string[] = []
    trie.covering(['u', 'alice', 'x'], { clientId: 'c', username: 'alice', deviceId: 'd' }, out)
    trie.covering(['u', 'bob', 'x'], { clientId: 'c', username: 'alice', deviceId: 'd' }, out)
    trie.covering(['u', 'alice', 'x'], { clientId: 'c', deviceId: 'd' }, out)
    expect(out).toEqual(['user'])
  })

  it('a placeholder value that is not one level never matches, even through + or #', () => {
    const trie = new TopicTrie<string>()
    trie.insert('x/%d', 'd')
    const out: string[] = []
    for (const deviceId of ['', 'a/b', 'a+', '#']) {
      const who = { clientId: 'c', deviceId }
      trie.covering(['x', ...deviceId.split('/')], who, out)
      trie.covering(['x', deviceId], who, out)
      trie.intersecting(['x', '+'], who, out)
      trie.intersecting(['x', '#'], who, out)
    }
    expect(out).toEqual([])
    trie.intersecting(['x', '#'], { clientId: 'c', deviceId: 'ok' }, out)
    expect(out).toEqual(['d'])
  })

  it('a first-level placeholder never matches a $ level', () => {
    const trie = new TopicTrie<string>()
    trie.insert('%c/x', 'c')
    const out: string[] = []
    trie.covering(['$c', 'x'], { clientId: '$c', deviceId: 'd' }, out)
    trie.intersecting(['+', 'x'], { clientId: '$c', deviceId: 'd' }, out)
    expect(out).toEqual([])
  })
})

describe('levelValue', () => {
  it.each([
    ['dev-1', 'dev-1'],
    ['', undefined],
    [undefined, undefined],
    ['a/b', undefined],
    ['a+', undefined],
    ['a#', undefined],
    ['a\u0000', undefined],
  ])('%j → %j', (value, expected) => {
    expect(levelValue(value)).toBe(expected)
  })
})
