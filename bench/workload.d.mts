import type { PolicyInput } from '../policies/schema.js'
import type { PolicyRequest, Principal } from '../policies/types.js'

export function buildPolicy(size: number): { policy: PolicyInput; devices: number }

export function buildRequests(
  action: 'publish' | 'subscribe',
  count: number,
  devices: number,
): Array<{ principal: Principal; request: PolicyRequest }>
