import { describe, expect, it } from 'vitest'
import { escapeHtml } from '../../cli/status-page.js'

describe('status page escaping', () => {
  it('escapes what HTML would read as markup or an attribute end', () => {
    expect(escapeHtml(`<script>alert("x")</script> & 'y'`)).toBe(
      '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;',
    )
  })
})
