import type { Rule } from './schema.js'
import { intern, TopicTrie } from './trie.js'
import type { Action, CompiledRule, Principal } from './types.js'

/**
 * The rules of one principal key (`device:<id>`, `group:<name>`, `everyone`,
 * ...). It is itself the trie of allow rules (one object less to reach on
 * every decision), with the deny rules in a trie of their own. Each trie holds
 * rules of every action (a `both` rule once); a walk keeps the request's.
 */
class RuleSet extends TopicTrie<CompiledRule> {
  // Created on first use: most keys (one per device) have no deny rule.
  deny: TopicTrie<CompiledRule> | undefined = undefined

  add(rule: CompiledRule, levels: Map<string, string>): void {
    if (rule.effect === 'allow') {
      this.insert(rule.topic, rule, levels)
      return
    }
    this.deny ??= new TopicTrie()
    this.deny.insert(rule.topic, rule, levels)
  }

  collect(action: Action, levels: ReadonlyArray<string>, who: Principal, out: Matches): void {
    // A deny rule refuses any overlap; an allow rule must cover the whole request.
    if (this.deny) {
      const from = out.deny.length
      this.deny.intersecting(levels, who, out.deny)
      keepAction(out.deny, from, action)
    }
    if (this.size > 0) {
      const from = out.allow.length
      this.covering(levels, who, out.allow)
      keepAction(out.allow, from, action)
    }
  }
}

/** Drops from `rules[from..]` the rules that do not apply to `action`. */
function keepAction(rules: CompiledRule[], from: number, action: Action): void {
  let kept = from
  for (let i = from; i < rules.length; i++) {
    const rule = rules[i]!
    if (rule.action === action || rule.action === 'both') rules[kept++] = rule
  }
  if (kept < rules.length) rules.length = kept
}

export interface Matches {
  readonly deny: CompiledRule[]
  readonly allow: CompiledRule[]
}

/**
 * Rules indexed by the principal they name, each key with its own tries, so a
 * decision walks only the tries of the keys the asking principal has.
 */
export class PrincipalIndex {
  private readonly devices = new Map<string, RuleSet>()
  private readonly usernames = new Map<string, RuleSet>()
  private readonly clientIds = new Map<string, RuleSet>()
  private readonly groups = new Map<string, RuleSet>()
  private readonly everyone = new RuleSet()
  private readonly anonymous = new RuleSet()

  /** One copy of each level string across all tries (see `TopicTrie.insert`). */
  private readonly levels = new Map<string, string>()

  add(rule: CompiledRule): void {
    this.setFor(rule.who).add(rule, this.levels)
  }

  /** Drops what only building needed. */
  built(): void {
    this.levels.clear()
  }

  /** Pushes the rules of every key `principal` has whose filter concerns the request `levels`. */
  collect(principal: Principal, action: Action, levels: ReadonlyArray<string>, out: Matches): void {
    if (this.devices.size > 0) {
      this.devices.get(principal.deviceId)?.collect(action, levels, principal, out)
    }
    if (this.clientIds.size > 0) {
      this.clientIds.get(principal.clientId)?.collect(action, levels, principal, out)
    }
    if (principal.username === undefined) {
      this.anonymous.collect(action, levels, principal, out)
    } else if (this.usernames.size > 0) {
      this.usernames.get(principal.username)?.collect(action, levels, principal, out)
    }
    if (this.groups.size > 0) {
      const groups = principal.groups
      for (let i = 0; i < groups.length; i++) {
        const group = groups[i]!
        if (groups.indexOf(group) !== i) continue // listed twice
        this.groups.get(group)?.collect(action, levels, principal, out)
      }
    }
    this.everyone.collect(action, levels, principal, out)
  }

  private setFor(who: Rule['who']): RuleSet {
    if (who === 'everyone') return this.everyone
    if (who === 'anonymous') return this.anonymous
    if ('device' in who) return this.getOrCreate(this.devices, who.device)
    if ('username' in who) return this.getOrCreate(this.usernames, who.username)
    if ('clientId' in who) return this.getOrCreate(this.clientIds, who.clientId)
    return this.getOrCreate(this.groups, who.group)
  }

  private getOrCreate(map: Map<string, RuleSet>, key: string): RuleSet {
    let set = map.get(key)
    if (!set) {
      set = new RuleSet()
      // The same string as the level `dev-7` in `devices/dev-7/#`: one less cache line per decision.
      map.set(intern(this.levels, key), set)
    }
    return set
  }
}
