import { describe, expect, it } from 'vitest'
import { topicTextProblem } from '../../bridge/topic-text.js'

describe('topicTextProblem', () => {
  it.each([['devices/a/temp'], ['sites/17/é/温度'], ['emoji/\u{1F600}'], ['$gw/x/status']])(
    'accepts %s',
    (topic) => {
      expect(topicTextProblem(topic)).toBeUndefined()
    },
  )

  it.each([
    ['', 'it is empty'],
    ['a/+/b', 'it holds the wildcard "+" at 2'],
    ['a/#', 'it holds the wildcard "#" at 2'],
    ['a\u0000b', 'it holds the control character U+0000 at 1'],
    ['a\u0001b', 'it holds the control character U+0001 at 1'],
    ['a\u007fb', 'it holds the control character U+007F at 1'],
    ['a\u0085', 'it holds the control character U+0085 at 1'],
    ['devices/flooder/\uffff ', 'it holds the non-character U+FFFF at 16'],
    ['x\ufdd0', 'it holds the non-character U+FDD0 at 1'],
    ['x\u{1FFFE}', 'it holds the non-character U+1FFFE at 1'],
    ['x\ud800y', 'it holds a lone surrogate U+D800 at 1'],
    ['x\udc00', 'it holds a lone surrogate U+DC00 at 1'],
  ])('refuses %j: %s', (topic, problem) => {
    expect(topicTextProblem(topic)).toBe(problem)
  })
})
