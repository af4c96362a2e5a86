import { describe, expect, it } from 'vitest'
import { mapTopic } from '../../bridge/topic-map.js'

describe('mapTopic', () => {
  const mappings = [
    { local: 'devices/a/', cloud: 'site/1/a/' },
    { local: 'devices/', cloud: 'site/1/all/' },
    { local: 'devices/a/deep/', cloud: 'never/' },
  ]

  it('replaces the prefix of the first mapping that matches', () => {
    expect(mapTopic(mappings, 'devices/a/temp')).toBe('site/1/a/temp')
    expect(mapTopic(mappings, 'devices/b/temp')).toBe('site/1/all/b/temp')
    // A later, more specific mapping never wins over an earlier one.
    expect(mapTopic(mappings, 'devices/a/deep/x')).toBe('site/1/a/deep/x')
  })

  it('maps a topic equal to the prefix onto the cloud prefix', () => {
    expect(mapTopic(mappings, 'devices/a/')).toBe('site/1/a/')
  })

  it('returns undefined when no mapping matches', () => {
    expect(mapTopic(mappings, 'other/a/temp')).toBeUndefined()
    expect(mapTopic(mappings, 'devices')).toBeUndefined()
    expect(mapTopic(mappings, 'Devices/a/temp')).toBeUndefined()
    expect(mapTopic(mappings, '/devices/a/temp')).toBeUndefined()
    expect(mapTopic(mappings, '')).toBeUndefined()
    expect(mapTopic([], 'devices/a/temp')).toBeUndefined()
  })

  it('maps every topic under an empty local prefix', () => {
    const all = [{ local: '', cloud: 'gw/gw-1/' }]
    expect(mapTopic(all, 'devices/a/temp')).toBe('gw/gw-1/devices/a/temp')
    expect(mapTopic(all, 'x')).toBe('gw/gw-1/x')
    expect(mapTopic(all, '')).toBe('gw/gw-1/')
  })

  it('strips the prefix when the cloud prefix is empty', () => {
    expect(mapTopic([{ local: 'devices/', cloud: '' }], 'devices/a/temp')).toBe('a/temp')
  })

  it('replaces only the leading prefix, not later occurrences', () => {
    expect(mapTopic([{ local: 'a/', cloud: 'b/' }], 'a/a/a/')).toBe('b/a/a/')
  })
})
