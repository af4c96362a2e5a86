import { describe, expect, it } from 'vitest'
import {
  filterCoveredBy,
  filtersIntersect,
  isValidTopicName,
  topicMatchesFilter,
  validateFilter,
} from '../../policies/topic-filter.js'

describe('topicMatchesFilter (MQTT 3.1.1 §4.7)', () => {
  const table: Array<[topic: string, filter: string, matches: boolean]> = [
    ['sport/tennis/player1', 'sport/tennis/player1', true],
    ['sport/tennis/player1', 'sport/tennis/player2', false],
    ['sport/tennis/player1', 'sport/tennis/player1/#', true],
    ['sport/tennis/player1/ranking', 'sport/tennis/player1/#', true],
    ['sport/tennis/player1/score/wimbledon', 'sport/tennis/player1/#', true],
    ['sport', 'sport/#', true],
    ['sport/', 'sport/#', true],
    ['sports', 'sport/#', false],
    ['sport/tennis', '#', true],
    ['/', '#', true],
    ['sport/tennis/player1', 'sport/tennis/+', true],
    ['sport/tennis/player1/ranking', 'sport/tennis/+', false],
    ['sport/tennis', 'sport/+', true],
    ['sport', 'sport/+', false],
    ['sport/', 'sport/+', true],
    ['/finance', '+/+', true],
    ['/finance', '/+', true],
    ['/finance', '+', false],
    ['finance', '+', true],
    ['a/b/c', '+/+/+', true],
    ['a/b/c', '+/+', false],
    ['a/b/c', 'a/+/c', true],
    ['a/x/y/c', 'a/+/c', false],
    ['a//c', 'a/+/c', true],
    ['a/b', 'a/b/+', false],
    ['a/b', 'A/b', false],
    ['a/b/c', '+/b/#', true],
    ['$SYS/broker/uptime', '#', false],
    ['$SYS/broker/uptime', '+/broker/uptime', false],
    ['$SYS/broker/uptime', '$SYS/#', true],
    ['$SYS/broker/uptime', '$SYS/broker/+', true],
    ['$SYS', '$SYS/#', true],
    ['$SYS/broker', '$SYS', false],
    ['$share/g/a', '+/g/a', false],
    ['a/$SYS', 'a/+', true],
    ['a/$SYS', 'a/#', true],
    ['devices/%d/x', 'devices/%d/x', true],
  ]
  it.each(table)('%j against %j → %j', (topic, filter, matches) => {
    expect(topicMatchesFilter(topic, filter)).toBe(matches)
  })
  it('has at least 30 rows', () => {
    expect(table.length).toBeGreaterThanOrEqual(30)
  })
})

describe('filterCoveredBy', () => {
  const table: Array<[requested: string, rule: string, covered: boolean]> = [
    ['a/b', 'a/b', true],
    ['a/b', 'a/+', true],
    ['a/b', 'a/#', true],
    ['a/b', '#', true],
    ['a/+', 'a/+', true],
    ['a/+', 'a/#', true],
    ['a/+', 'a/b', false],
    ['a/#', 'a/#', true],
    ['a/#', 'a/+', false],
    ['a/#', 'a/b', false],
    ['a/#', 'a/+/#', false],
    ['a/+', 'a/+/#', true],
    ['a', 'a/#', true],
    ['a/#', 'a', false],
    ['a/b/c', 'a/+', false],
    ['a', 'a/+', false],
    ['#', '#', true],
    ['#', '+/#', false],
    ['+/x', '#', true],
    ['+', '+', true],
    ['$SYS/#', '#', false],
    ['$SYS/x', '+/x', false],
    ['$SYS/#', '$SYS/#', true],
    ['$SYS/x', '$SYS/+', true],
    ['+/x', '$SYS/x', false],
  ]
  it.each(table)('%j within %j → %j', (requested, rule, covered) => {
    expect(filterCoveredBy(requested, rule)).toBe(covered)
  })
})

describe('filtersIntersect', () => {
  const table: Array<[a: string, b: string, intersect: boolean]> = [
    ['a/#', 'a/secret', true],
    ['a/secret', 'a/#', true],
    ['a/+', 'a/secret', true],
    ['a/+', 'a/b/c', false],
    ['a/+/c', 'a/b/+', true],
    ['a/b', 'a/c', false],
    ['a', 'a/#', true],
    ['a', 'a/+', false],
    ['#', 'x/y', true],
    ['#', '$SYS/x', false],
    ['+/#', '$SYS/#', false],
    ['$SYS/#', '$SYS/broker', true],
    ['+', '+', true],
  ]
  it.each(table)('%j and %j → %j', (a, b, intersect) => {
    expect(filtersIntersect(a, b)).toBe(intersect)
  })
})

describe('validateFilter', () => {
  it.each(['#', '+', 'a/#', '+/+/#', '/', 'a//b', '$SYS/#', 'devices/%d/#', '%c/%u/%d', '50%', 'a/%x'])(
    'accepts %j',
    (filter) => {
      expect(validateFilter(filter)).toBeNull()
    },
  )

  it.each([
    ['', 'expected a non-empty topic filter'],
    ['a/#/b', "'#' must be the last level, got it at level 2 of 3"],
    ['a#', `'#' must fill a whole level, got level "a#"`],
    ['#/a', "'#' must be the last level, got it at level 1 of 2"],
    ['a+', `'+' must fill a whole level, got level "a+"`],
    ['a/+b/c', `'+' must fill a whole level, got level "+b"`],
    ['dev-%d/x', 'a substitution (%c, %u, %d) must fill a whole level, got level "dev-%d"'],
    ['a\u0000b', 'expected a topic filter without NUL characters'],
  ])('refuses %j: %s', (filter, problem) => {
    expect(validateFilter(filter)).toBe(problem)
  })

  it('treats substitution tokens as text in a client filter', () => {
    expect(validateFilter('dev-%d/x', { substitutions: false })).toBeNull()
  })
})

describe('isValidTopicName', () => {
  it.each([
    ['a/b', true],
    ['$SYS/x', true],
    ['/', true],
    ['', false],
    ['a/+', false],
    ['a/#', false],
    ['a\u0000', false],
  ])('%j → %j', (topic, valid) => {
    expect(isValidTopicName(topic)).toBe(valid)
  })
})
